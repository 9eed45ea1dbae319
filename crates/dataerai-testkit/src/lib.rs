//! Test support shared by every integration suite of the workspace.
//!
//! - [`bins`]: where the binaries cargo built for this test run are.
//! - [`backends`]: the scale-out backends (PostgreSQL + S3) the suites run on
//!   in `make test-scaleout`, and the rule for tests that need them
//!   ([`backends::scaleout_var`]).
//! - [`server`]: a real `dataerai-server` process on a data directory
//!   ([`server::TestServer`], with a start-up timeout and its log shown when
//!   something fails), and the `admin` commands that bootstrap users and tokens.
//! - [`metrics`]: reading `/metrics` samples.
//! - [`web`]: a person in the server's HTML pages (forms, cookies, CSRF) and
//!   the OAuth device login played over HTTP.
//! - [`wait`]: polling with a deadline instead of fixed sleeps.
//! - [`json_items`]: one object of a JSON answer's array, by a key.

#![forbid(unsafe_code)]

pub mod backends;
pub mod bins;
pub mod json_items;
pub mod metrics;
pub mod server;
pub mod wait;
pub mod web;

pub use backends::{backend_args, blob_content_dir, blob_files, scaleout, scaleout_var};
pub use bins::bin_path;
pub use json_items::item;
pub use metrics::metric_value;
pub use server::{
    admin, admin_raw, admin_stdin, create_token, make_user, make_user_with_password,
    output_with_stdin, set_password, TestServer,
};
pub use wait::{wait_until, wait_until_async};
