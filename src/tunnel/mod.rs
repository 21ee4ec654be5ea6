//! SSM Session Manager port forwarding: the SSM API calls and the plugin process.

pub mod aws;
