//! Upload sessions do not hold a reservation forever: an idle session
//! expires (reservation released; the empty asset it was opened for removed
//! with it, so it answers 404; on an asset that stays, it answers that it
//! expired), a session with requests on it
//! stays open, project owners and admins may abort any session in their
//! project, and a member removed from a project loses their open sessions
//! there. Idle limits are seconds in the config file, so nothing sleeps long.

mod common;

use std::time::Duration;

use common::*;
use dataerai_testkit::wait_until_async;
use reqwest::StatusCode;
use serde_json::json;

const CS: u64 = 4096;

/// Sessions idle for 2 s expire; the expiry task runs every second.
const FAST_EXPIRY: &str = "[uploads]\nsession_idle_s = 2\nexpiry_interval_s = 1\n";

async fn status_of(api: &Api, upload_id: &str) -> String {
    let (s, session) = api.get(&format!("/api/v1/uploads/{upload_id}")).await;
    assert_eq!(s, StatusCode::OK, "{session}");
    session["status"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn idle_sessions_expire_and_active_ones_stay() {
    let (lab, [alice]) = Lab::start_with(["alice@lab.org"], |b| b.config(FAST_EXPIRY));
    let api = &alice.api;
    lab.server.set_user_quota("alice@lab.org", 3 * CS);

    // An upload that stops (a killed client): its asset was created for it.
    let abandoned_asset = alice.personal_asset("abandoned").await;
    let abandoned = created(
        api.open_upload(&abandoned_asset, json!([{"name": "a", "size": 2 * CS}]), CS)
            .await,
    );
    let abandoned_id = abandoned["upload_id"].as_str().unwrap();
    assert_eq!(
        api.put_chunk(abandoned_id, 0, 0, &data(CS as usize, 1))
            .await
            .0,
        StatusCode::OK
    );
    // An upload whose client keeps asking (a resuming daemon asks which
    // chunks the server holds, then sends the rest).
    let kept_asset = alice.personal_asset("kept").await;
    let body = data(CS as usize, 2);
    let kept = created(
        api.open_upload(&kept_asset, json!([{"name": "k", "size": CS}]), CS)
            .await,
    );
    let kept_id = kept["upload_id"].as_str().unwrap();
    // Both reservations together fill the quota.
    let third = alice.personal_asset("third").await;
    assert_err(
        &api.open_upload(&third, json!([{"name": "t", "size": CS}]), CS)
            .await,
        QUOTA_EXCEEDED,
    );

    // Six seconds, three times the idle limit: the kept session is asked
    // about twice a second, the abandoned one never.
    for _ in 0..12 {
        assert_eq!(status_of(api, kept_id).await, "open");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(lab.server.metric("dataerai_uploads_expired_total") >= 1);

    // The abandoned session went with the empty asset it was opened for …
    for reply in [
        api.get(&format!("/api/v1/uploads/{abandoned_id}")).await,
        api.put_chunk(abandoned_id, 0, 1, &data(CS as usize, 3))
            .await,
        api.complete(abandoned_id, &[&data(2 * CS as usize, 1)])
            .await,
        api.get(&format!("/api/v1/assets/{abandoned_asset}")).await,
    ] {
        assert_err(&reply, NOT_FOUND);
    }
    // … and its reservation with it.
    let third_session = created(
        api.open_upload(&third, json!([{"name": "t", "size": CS}]), CS)
            .await,
    );
    assert_eq!(
        api.delete(&format!(
            "/api/v1/uploads/{}",
            third_session["upload_id"].as_str().unwrap()
        ))
        .await
        .0,
        StatusCode::NO_CONTENT
    );

    // The kept session still completes, and its version downloads.
    assert_eq!(api.put_chunk(kept_id, 0, 0, &body).await.0, StatusCode::OK);
    let (s, version) = api.complete(kept_id, &[&body]).await;
    assert_eq!(s, StatusCode::OK, "{version}");
    assert_eq!(api.latest_file(&kept_asset).await.1, body);
    assert_eq!(lab.server.metric("dataerai_active_uploads"), 0);
}

#[tokio::test]
async fn an_asset_with_a_published_version_outlives_its_expired_session() {
    let (lab, [alice]) = Lab::start_with(["alice@lab.org"], |b| b.config(FAST_EXPIRY));
    let api = &alice.api;
    let asset = alice.personal_asset("published").await;
    let v1 = data(100, 7);
    api.upload(&asset, &[("f", &v1)], CS).await;
    let second = created(
        api.open_upload(&asset, json!([{"name": "f", "size": 2 * CS}]), CS)
            .await,
    );
    let second_id = second["upload_id"].as_str().unwrap();
    // Polled through the metrics: asking about the session would keep it.
    wait_until_async(
        "the second session to expire",
        Duration::from_secs(20),
        || {
            let expired = lab.server.metric("dataerai_uploads_expired_total");
            async move { (expired >= 1).then_some(()) }
        },
    )
    .await;
    assert_eq!(status_of(api, second_id).await, "aborted");
    // Using it again says why it is closed.
    for reply in [
        api.put_chunk(second_id, 0, 0, &data(CS as usize, 8)).await,
        api.complete(second_id, &[&data(2 * CS as usize, 8)]).await,
        api.delete(&format!("/api/v1/uploads/{second_id}")).await,
    ] {
        assert_err_mentions(&reply, INVALID_INPUT, "expired");
    }
    // Version 1 is untouched.
    assert_eq!(api.latest_file(&asset).await, (StatusCode::OK, v1));
}

#[tokio::test]
async fn project_managers_abort_sessions_and_removed_members_lose_theirs() {
    let (lab, [owner, member, admin, other]) = Lab::start([
        "owner@lab.org",
        "member@lab.org",
        "admin@lab.org",
        "other@lab.org",
    ]);
    let project = owner.api.create_project("shared").await;
    for (email, role) in [
        ("member@lab.org", "member"),
        ("admin@lab.org", "admin"),
        ("other@lab.org", "member"),
    ] {
        let (s, m) = owner.api.set_role(&project, email, role).await;
        assert_eq!(s, StatusCode::CREATED, "{m}");
    }
    lab.server.admin(&[
        "set-quota",
        "--project",
        &project,
        "--bytes",
        &(6 * CS).to_string(),
    ]);
    let asset = member.api.project_asset(&project, "big").await;
    let open = |api: Api| {
        let asset = asset.clone();
        async move {
            let s = created(
                api.open_upload(&asset, json!([{"name": "x", "size": 2 * CS}]), CS)
                    .await,
            );
            s["upload_id"].as_str().unwrap().to_string()
        }
    };

    // A member's session takes a third of the project's quota; to another
    // member it is as unknown as a missing one, the owner and an admin may abort it.
    for manager in [&owner, &admin] {
        let up = open(member.api.clone()).await;
        assert_err(
            &other.api.delete(&format!("/api/v1/uploads/{up}")).await,
            NOT_FOUND,
        );
        let (s, body) = manager.api.delete(&format!("/api/v1/uploads/{up}")).await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{body}");
        assert_eq!(status_of(&member.api, &up).await, "aborted");
    }

    // Removing a member aborts their open sessions in the project and frees
    // the quota they held; other members' sessions stay.
    let first = open(member.api.clone()).await;
    let second = open(member.api.clone()).await;
    let others = open(other.api.clone()).await;
    assert_err(
        &other
            .api
            .open_upload(&asset, json!([{"name": "y", "size": 1}]), CS)
            .await,
        QUOTA_EXCEEDED,
    );
    let (s, body) = owner
        .api
        .delete(&format!("/api/v1/projects/{project}/members/{}", member.id))
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(status_of(&other.api, &others).await, "open");
    let refill = created(
        other
            .api
            .open_upload(&asset, json!([{"name": "z", "size": 2 * CS}]), CS)
            .await,
    );
    assert_eq!(refill["status"], "open");
    // The removed member's sessions are closed, with the reason.
    for up in [first, second] {
        let reply = owner.api.delete(&format!("/api/v1/uploads/{up}")).await;
        assert_err_mentions(&reply, INVALID_INPUT, "removed from the project");
    }
}
