//! Network-namespace lab harness for end-to-end tests (needs root).
