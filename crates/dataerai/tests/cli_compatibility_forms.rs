//! Command lines and environments existing scripts use: `auth login --device
//! --client-id`, `upload --file --project --collection --metadata FILE.json`,
//! `DATAERAI_TOKEN`/`DATAERAI_SERVER`, and a credential file of an earlier
//! version (`credentials.json`), migrated on first read.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::sign_in::{DeviceLogin, PASSWORD};
use common::*;
use serde_json::{json, Value};

fn saved(user: &UserEnv) -> Value {
    let path = user.config_dir.path().join("credentials");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn device_login_takes_the_device_and_client_id_flags() {
    let server = TestServer::start_temp();
    server.create_user_with_password("ada@lab.org", PASSWORD);
    let user = UserEnv::new();
    let login = DeviceLogin::start_with(
        &user,
        &[
            "auth",
            "login",
            "--device",
            "--client-id",
            "qick-capture",
            "--server",
            &server.base,
            "--no-browser",
        ],
    );
    let (code, stdout, stderr) = login.decide_in_browser(&server.base, "ada@lab.org", "approve");
    assert_eq!(code, Some(0), "login failed: {stdout}\n{stderr}");
    let creds = saved(&user);
    for key in ["access_token", "refresh_token", "server_url", "user_email"] {
        assert!(creds[key].is_string(), "{key} missing from the saved login");
    }
    assert_eq!(creds["user_email"], "ada@lab.org");
    assert_eq!(creds["server_url"], server.base.trim_end_matches('/'));
    let status = user.run_json(&["auth", "status"]);
    assert_eq!(status["user_email"], "ada@lab.org");
}

#[test]
fn upload_takes_file_project_collection_and_a_metadata_file() {
    let server = TestServer::start_temp();
    let user = signed_in_user(&server, "ada@lab.org");
    let project = user.run_json(&["project", "create", "Beamtime"]);
    let project_id = project["project_id"].as_str().unwrap();
    let collection = project["root_collection_id"].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "scan.h5", test_bytes(3000, 1));
    let described = dir.path().join("scan.json");
    std::fs::write(
        &described,
        json!({"title": "Scan 7", "description": "overnight", "tags": ["raw", "tomo"],
               "metadata": {"energy_keV": 25}})
        .to_string(),
    )
    .unwrap();
    let up = user.run_json(&[
        "upload",
        "--file",
        file.to_str().unwrap(),
        "--project",
        project_id,
        "--collection",
        collection,
        "--metadata",
        described.to_str().unwrap(),
    ]);
    let asset_id = up["asset_id"].as_str().unwrap();
    let asset = user.run_json(&["metadata", "get", asset_id]);
    assert_eq!(asset["title"], "Scan 7");
    assert_eq!(asset["description"], "overnight");
    assert_eq!(asset["tags"], json!(["raw", "tomo"]));
    assert_eq!(asset["metadata"], json!({"energy_keV": 25}));
    assert_eq!(asset["owner_id"], project_id);
    assert_eq!(asset["collection_ids"], json!([collection]));

    // A flag given on the command line wins over the file; inline JSON still works.
    let metadata = ["--metadata", described.to_str().unwrap()];
    let up = user.upload_to_project(&file, "Scan 7b", project_id, &metadata);
    let asset = user.run_json(&["metadata", "get", up["asset_id"].as_str().unwrap()]);
    assert_eq!(asset["title"], "Scan 7b");
    let up = user.upload_json(&file, "inline", &["--metadata", r#"{"k": 1}"#]);
    let asset = user.run_json(&["metadata", "get", up["asset_id"].as_str().unwrap()]);
    assert_eq!(asset["metadata"], json!({"k": 1}));

    // The help says so.
    let help = user.run_ok(&["upload", "--help"]);
    assert!(help.contains("--metadata FILE.json"), "{help}");

    // A file that is not a description is refused with what is wrong.
    std::fs::write(&described, r#"{"titel": "typo"}"#).unwrap();
    let out = user.run(&[
        "upload",
        "--file",
        file.to_str().unwrap(),
        "--user",
        "--metadata",
        described.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("titel") && err.contains("ERR_INVALID_INPUT"),
        "{err}"
    );
}

#[test]
fn a_token_in_the_environment_is_used_and_never_saved() {
    let server = TestServer::start_temp();
    let token = new_user_token(&server, "ada@lab.org", "read,write");
    let user = UserEnv::new();
    let with_env = |args: &[&str]| {
        let out = user
            .cmd()
            .env("DATAERAI_TOKEN", &token)
            .env("DATAERAI_SERVER", &server.base)
            .arg("--json")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let status = with_env(&["auth", "status"]);
    assert_eq!(status["user_email"], "ada@lab.org");
    assert_eq!(status["token_kind"], "env");
    assert_eq!(status["server_url"], server.base.trim_end_matches('/'));
    // The CLI's daemon gets the environment too.
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "x.bin", test_bytes(100, 2));
    let up = with_env(&["upload", file.to_str().unwrap(), "--title", "x", "--user"]);
    assert!(up["asset_id"].is_string(), "{up}");
    let leftovers: Vec<_> = std::fs::read_dir(user.config_dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("credentials"))
        .collect();
    assert!(
        !leftovers.iter().any(|n| n == "credentials"),
        "{leftovers:?}"
    );
    // Nor anywhere else the CLI and its daemon write (journal, logs).
    assert_nowhere_on_disk(user.config_dir.path(), &token);
    // Without the token nothing is signed in.
    let out = user.run(&["auth", "status"]);
    assert!(!out.status.success());

    // DATAERAI_SERVER is also the server `auth login` signs in to.
    let mut cmd = user.cmd();
    cmd.env("DATAERAI_SERVER", &server.base)
        .args(["auth", "login", "--token-stdin"]);
    let out = dataerai_testkit::output_with_stdin(cmd, &format!("{token}\n"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(saved(&user)["user_email"], "ada@lab.org");
}

fn assert_nowhere_on_disk(dir: &std::path::Path, token: &str) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            assert_nowhere_on_disk(&path, token);
        } else if let Ok(bytes) = std::fs::read(&path) {
            assert!(
                !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
                "the token is in {}",
                path.display()
            );
        }
    }
}

#[test]
fn a_credential_file_of_an_earlier_version_is_migrated_on_first_read() {
    let server = TestServer::start_temp();
    let user = signed_in_user(&server, "ada@lab.org");
    // Today's file, rewritten as an earlier version wrote it.
    let mut old = saved(&user);
    let o = old.as_object_mut().unwrap();
    let token = o.remove("access_token").unwrap();
    let url = o.remove("server_url").unwrap();
    o.insert("token".into(), token.clone());
    o.insert("server".into(), url);
    let dir = user.config_dir.path();
    std::fs::remove_file(dir.join("credentials")).unwrap();
    let legacy = dir.join("credentials.json");
    std::fs::write(&legacy, serde_json::to_vec(&old).unwrap()).unwrap();
    std::fs::set_permissions(&legacy, std::fs::Permissions::from_mode(0o600)).unwrap();

    let status = user.run_json(&["auth", "status"]);
    assert_eq!(status["user_email"], "ada@lab.org");
    assert!(!legacy.exists(), "the old file stays behind");
    let now = saved(&user);
    assert_eq!(now["access_token"], token);
    assert!(
        now.get("token").is_none() && now.get("server").is_none(),
        "{now:?}"
    );
}

/// `user.cmd()` without `DATAERAI_CONFIG_DIR`: the config directory comes from
/// `XDG_CONFIG_HOME` (when given) or `HOME`, as on a user's machine.
fn cmd_with_home(
    user: &UserEnv,
    home: &std::path::Path,
    xdg: Option<&std::path::Path>,
) -> std::process::Command {
    let mut cmd = user.cmd();
    cmd.env_remove("DATAERAI_CONFIG_DIR")
        .env_remove("XDG_CONFIG_HOME")
        .env("HOME", home);
    if let Some(xdg) = xdg {
        cmd.env("XDG_CONFIG_HOME", xdg);
    }
    cmd
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn the_login_lives_in_the_xdg_config_home_and_an_earlier_file_there_is_migrated() {
    let server = TestServer::start_temp();
    let token = new_user_token(&server, "ada@lab.org", "read,write");
    let user = UserEnv::new();
    let machine = tempfile::tempdir().unwrap();
    let home = machine.path().join("home");
    let xdg = machine.path().join("xdg");
    std::fs::create_dir_all(&home).unwrap();
    let status_json = |cmd: &mut std::process::Command| {
        let out = cmd.args(["--json", "auth", "status"]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };

    for (config, xdg) in [
        (xdg.join("dataerai"), Some(xdg.as_path())),
        (home.join(".config").join("dataerai"), None),
    ] {
        let mut login = cmd_with_home(&user, &home, xdg);
        login.args(["auth", "login", "--server", &server.base, "--token-stdin"]);
        let out = dataerai_testkit::output_with_stdin(login, &format!("{token}\n"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let file = config.join("credentials");
        assert_eq!(mode(&config), 0o700, "{}", config.display());
        assert_eq!(mode(&file), 0o600, "{}", file.display());
        let saved: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(saved["access_token"], token.as_str());
        assert_eq!(saved["server_url"], server.base.trim_end_matches('/'));
        assert_eq!(saved["user_email"], "ada@lab.org");
        assert!(!user.config_dir.path().join("credentials").exists());
        let status = status_json(&mut cmd_with_home(&user, &home, xdg));
        assert_eq!(status["user_email"], "ada@lab.org");
    }

    // Today's file of an earlier version, in the XDG config home: moved to
    // `credentials` on first read.
    let config = xdg.join("dataerai");
    let mut old: Value =
        serde_json::from_slice(&std::fs::read(config.join("credentials")).unwrap()).unwrap();
    let o = old.as_object_mut().unwrap();
    let t = o.remove("access_token").unwrap();
    let s = o.remove("server_url").unwrap();
    o.insert("token".into(), t);
    o.insert("server".into(), s);
    std::fs::remove_file(config.join("credentials")).unwrap();
    let legacy = config.join("credentials.json");
    std::fs::write(&legacy, serde_json::to_vec(&old).unwrap()).unwrap();
    std::fs::set_permissions(&legacy, std::fs::Permissions::from_mode(0o600)).unwrap();
    let status = status_json(&mut cmd_with_home(&user, &home, Some(&xdg)));
    assert_eq!(status["user_email"], "ada@lab.org");
    assert!(!legacy.exists());
    assert_eq!(mode(&config.join("credentials")), 0o600);
    let now: Value =
        serde_json::from_slice(&std::fs::read(config.join("credentials")).unwrap()).unwrap();
    assert_eq!(now["access_token"], token.as_str());
}
