//! vigild's wiring: the thin I/O shell around the protocol cores.
