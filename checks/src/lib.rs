//! Health checkers (TCP, HTTP/HTTPS, script, DNS, UDP, SMTP) for LVS real servers and the single
//! scheduler that runs them all on the tokio runtime. Results leave as events.
//!
//! Not implemented yet: see the health-check issue.
