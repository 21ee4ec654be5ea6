//! The application checks' HTTP client: the health endpoint's tenant-switching
//! checks (APP001–APP003) and the concurrent burst (APP004).

pub(crate) mod app;
pub(crate) mod burst;
pub(crate) mod health;
