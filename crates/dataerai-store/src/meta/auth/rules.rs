//! The decisions of sign-in, device login, token rotation and membership,
//! apart from any database: the store reads the rows, these functions say what
//! happens, the store writes the answer.

use chrono::{DateTime, Duration, Utc};
use dataerai_proto::api::ProjectRole;

use super::FailureCounts;
use crate::error::{Result, StoreError};

/// How long an expired device code is kept before it is purged; after that its
/// user code can be drawn again.
pub const EXPIRED_DEVICE_CODES_KEPT: Duration = Duration::hours(1);

/// Whether something that expires at `expires_at` (a session, a device code,
/// a refresh token) is still valid at `now`. The expiry instant itself is
/// already too late.
pub fn is_live(expires_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now < expires_at
}

/// Scopes are stored the same way by every table that has them.
pub use crate::rules::{join_scopes, split_scopes};

/// Whether a device code (`status`: `pending`, `approved`, `denied`,
/// `consumed`) can still be approved or denied at `now`.
pub fn awaits_decision(status: &str, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    status == "pending" && is_live(expires_at, now)
}

/// What one poll of `/oauth/token` does with a device code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollVerdict {
    /// Already redeemed.
    Invalid,
    Expired,
    Pending,
    /// Polled faster than the interval allows.
    SlowDown,
    Denied,
    /// Approved: issue the tokens and mark the code consumed.
    Issue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DevicePollStep {
    pub verdict: PollVerdict,
    /// Store the poll (its time and this interval in seconds); `None`: leave
    /// the code as it is.
    pub record_interval_s: Option<i64>,
}

/// One poll of a device code last polled at `last_poll`. RFC 8628 §3.5: a
/// pending code polled too fast answers `slow_down` and its interval grows by
/// 5 s. "Too fast" leaves a little slack (a second, at most half the
/// interval), because the client's sleep and the network are never exact.
pub fn device_poll(
    status: &str,
    interval_s: i64,
    last_poll: Option<DateTime<Utc>>,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> DevicePollStep {
    let unrecorded = |verdict| DevicePollStep {
        verdict,
        record_interval_s: None,
    };
    if status == "consumed" {
        return unrecorded(PollVerdict::Invalid);
    }
    if !is_live(expires_at, now) {
        return unrecorded(PollVerdict::Expired);
    }
    let interval = Duration::seconds(interval_s);
    let min_gap = (interval - Duration::seconds(1)).max(interval / 2);
    let too_fast = last_poll.is_some_and(|t| now - t < min_gap);
    let verdict = match status {
        "denied" => PollVerdict::Denied,
        "approved" => PollVerdict::Issue,
        _ if too_fast => PollVerdict::SlowDown,
        _ => PollVerdict::Pending,
    };
    let slowed = too_fast && status == "pending";
    DevicePollStep {
        verdict,
        record_interval_s: Some(if slowed { interval_s + 5 } else { interval_s }),
    }
}

/// What presenting a refresh token does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshVerdict {
    /// Expired or revoked: refused.
    Invalid,
    /// Already rotated, so someone holds a copy: revoke the whole family
    /// (every refresh token and every access token it issued).
    Reused,
    /// Use it up and issue the next pair in the same family.
    Rotate,
}

pub fn refresh_verdict(
    expires_at: DateTime<Utc>,
    used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> RefreshVerdict {
    if revoked_at.is_some() || !is_live(expires_at, now) {
        RefreshVerdict::Invalid
    } else if used_at.is_some() {
        RefreshVerdict::Reused
    } else {
        RefreshVerdict::Rotate
    }
}

/// A change to one project member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberChange {
    SetRole(ProjectRole),
    Remove,
}

/// A project always keeps an owner: `owners` are its owners' user ids (read
/// under lock), `user_id` the member `change` applies to.
pub fn keeps_an_owner(owners: &[String], user_id: &str, change: MemberChange) -> Result<()> {
    let last_owner = owners.len() <= 1 && owners.iter().any(|o| o == user_id);
    match change {
        MemberChange::SetRole(role) if last_owner && role != ProjectRole::Owner => {
            Err(StoreError::Invalid(
                "the last owner of a project cannot be demoted; make someone else owner first"
                    .into(),
            ))
        }
        MemberChange::Remove if last_owner => Err(StoreError::Invalid(
            "the last owner of a project cannot be removed; make someone else owner first".into(),
        )),
        _ => Ok(()),
    }
}

/// The sign-in rate limit. Every attempt is recorded as a failure *before*
/// the password is checked (and forgotten when it was right), so counts
/// include the attempt being decided and concurrent guesses cannot slip past.
///
/// - Per client address: more than `max_per_addr` failures within the last
///   `window_s` seconds refuse further attempts from that address until the
///   oldest leaves the window ([`SignInLimit::address_retry_after_s`]).
/// - Per email: beyond `max_per_email` failures, attempts are slowed down,
///   not refused: each waits 1 s, 2 s, 4 s, … up to `max_delay_s` before its
///   password is checked ([`SignInLimit::email_delay_s`]). A guesser gets
///   very few tries; the account's owner still gets in with the right password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInLimit {
    pub window_s: i64,
    pub max_per_email: u64,
    pub max_per_addr: u64,
    pub max_delay_s: u64,
}

impl SignInLimit {
    /// Failures after this instant count.
    pub fn window_start(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - Duration::seconds(self.window_s)
    }

    /// `None` when the address may try now; otherwise how many seconds (never
    /// less than one) until its oldest failure leaves the window.
    pub fn address_retry_after_s(&self, counts: &FailureCounts, now: DateTime<Utc>) -> Option<i64> {
        let oldest = counts
            .oldest_by_addr
            .filter(|_| counts.by_addr > self.max_per_addr)?;
        let left = oldest + Duration::seconds(self.window_s) - now;
        Some(left.num_seconds().max(1))
    }

    /// Seconds to wait before checking the password: 0 within the email's
    /// allowance, then doubling from 1 s, at most `max_delay_s`.
    pub fn email_delay_s(&self, counts: &FailureCounts) -> u64 {
        match counts.by_email.saturating_sub(self.max_per_email) {
            0 => 0,
            excess => 1u64
                .checked_shl(u32::try_from(excess - 1).unwrap_or(u32::MAX))
                .unwrap_or(u64::MAX)
                .min(self.max_delay_s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_765_000_000 + s, 0).unwrap()
    }

    #[test]
    fn expiry_instant_is_already_too_late() {
        assert!(is_live(t(10), t(9)));
        assert!(!is_live(t(10), t(10)));
        assert!(!is_live(t(10), t(11)));
        assert!(awaits_decision("pending", t(10), t(9)));
        assert!(!awaits_decision("pending", t(10), t(10)));
        assert!(!awaits_decision("approved", t(10), t(9)));
    }

    #[test]
    fn scopes_round_trip_and_skip_empty_parts() {
        let scopes = vec!["read".to_string(), "write".to_string()];
        assert_eq!(split_scopes(&join_scopes(&scopes)), scopes);
        assert_eq!(split_scopes(""), Vec::<String>::new());
        assert_eq!(split_scopes("read,,write,"), scopes);
    }

    #[test]
    fn device_poll_paces_a_pending_code() {
        use PollVerdict::*;
        let cases = [
            // First poll, and polls at least interval - 1 s apart.
            ("pending", None, 0, Pending, Some(5)),
            ("pending", Some(0), 4, Pending, Some(5)),
            // Too fast: slow down, 5 s more.
            ("pending", Some(0), 3, SlowDown, Some(10)),
            // Approved or denied answer regardless of pace, without slowing.
            ("approved", Some(0), 1, Issue, Some(5)),
            ("denied", Some(0), 1, Denied, Some(5)),
            // Expired or redeemed: nothing recorded.
            ("pending", None, 600, Expired, None),
            ("approved", None, 600, Expired, None),
            ("consumed", None, 1, Invalid, None),
        ];
        for (status, last, now, verdict, interval) in cases {
            let step = device_poll(status, 5, last.map(t), t(600), t(now));
            let want = DevicePollStep {
                verdict,
                record_interval_s: interval,
            };
            assert_eq!(step, want, "{status} polled at {now}, last at {last:?}");
        }
    }

    #[test]
    fn device_poll_slack_is_at_most_half_the_interval() {
        // 1 s interval: the gap must be at least 0.5 s, not 0 s.
        let half = t(0) + Duration::milliseconds(499);
        let pace = |now| device_poll("pending", 1, Some(t(0)), t(600), now).verdict;
        assert_eq!(pace(half), PollVerdict::SlowDown);
        assert_eq!(
            pace(t(0) + Duration::milliseconds(500)),
            PollVerdict::Pending
        );
    }

    #[test]
    fn refresh_token_reuse_revokes_and_expiry_refuses() {
        // (used_at, revoked_at, now) of a token expiring at t(10) → verdict.
        let cases = [
            (None, None, t(0), RefreshVerdict::Rotate),
            (Some(t(1)), None, t(2), RefreshVerdict::Reused),
            (None, Some(t(1)), t(2), RefreshVerdict::Invalid),
            (Some(t(1)), Some(t(1)), t(2), RefreshVerdict::Invalid),
            (None, None, t(10), RefreshVerdict::Invalid),
            (Some(t(1)), None, t(10), RefreshVerdict::Invalid),
        ];
        for (used_at, revoked_at, now, want) in cases {
            assert_eq!(
                refresh_verdict(t(10), used_at, revoked_at, now),
                want,
                "used {used_at:?}, revoked {revoked_at:?}, at {now}"
            );
        }
    }

    #[test]
    fn the_last_owner_stays() {
        use MemberChange::*;
        let one = ["a".to_string()];
        let two = ["a".to_string(), "b".to_string()];
        let cases: [(&[String], &str, MemberChange, Option<&str>); 7] = [
            (&one, "a", SetRole(ProjectRole::Member), Some("demoted")),
            (&one, "a", Remove, Some("removed")),
            (&one, "a", SetRole(ProjectRole::Owner), None),
            (&one, "b", Remove, None),
            (&one, "b", SetRole(ProjectRole::Viewer), None),
            (&two, "a", Remove, None),
            (&two, "a", SetRole(ProjectRole::Member), None),
        ];
        for (owners, user, change, refused) in cases {
            let got = keeps_an_owner(owners, user, change);
            match (got, refused) {
                (Ok(()), None) => {}
                (Err(StoreError::Invalid(m)), Some(word)) if m.contains(word) => {}
                (got, _) => panic!("{owners:?} {user} {change:?}: {got:?}"),
            }
        }
    }

    #[test]
    fn sign_in_limit_refuses_an_address_and_slows_an_email() {
        let limit = SignInLimit {
            window_s: 900,
            max_per_email: 5,
            max_per_addr: 20,
            max_delay_s: 30,
        };
        let now = t(1000);
        assert_eq!(limit.window_start(now), t(100));
        let counts = |by_email, by_addr, oldest_addr| FailureCounts {
            by_email,
            oldest_by_email: Some(t(100)),
            by_addr,
            oldest_by_addr: Some(t(oldest_addr)),
        };
        // The counts include the attempt being decided: the 20th failure from
        // an address is still tried, the 21st waits for the oldest (150) to
        // leave the window at 1050.
        assert_eq!(limit.address_retry_after_s(&counts(1, 20, 150), now), None);
        assert_eq!(
            limit.address_retry_after_s(&counts(1, 21, 150), now),
            Some(50)
        );
        assert_eq!(
            limit.address_retry_after_s(&FailureCounts::default(), now),
            None
        );
        // Leaving within the second: at least 1 s; partial seconds are cut.
        assert_eq!(
            limit.address_retry_after_s(&counts(1, 21, 100), now),
            Some(1)
        );
        let part = FailureCounts {
            oldest_by_addr: Some(t(150) + Duration::milliseconds(999)),
            ..counts(1, 21, 0)
        };
        assert_eq!(limit.address_retry_after_s(&part, now), Some(50));
        // Per email: free within the allowance, then 1, 2, 4, … s, capped.
        let delays: Vec<u64> = (1..=12)
            .map(|n| limit.email_delay_s(&counts(n, 1, 150)))
            .collect();
        assert_eq!(delays, [0, 0, 0, 0, 0, 1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(limit.email_delay_s(&counts(u64::MAX, 1, 150)), 30);
    }
}
