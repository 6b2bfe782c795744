//! The gateway refuses to start without a strong signing key and a valid encryption key, with
//! one line naming the setting; published placeholders and patterned keys are refused the same
//! way, by a start and by `check-config`.

use std::process::Command;

fn gateway(env: &[(&str, &str)]) -> (Option<i32>, String) {
    gateway_with(&[], env)
}

fn gateway_with(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_flick-gateway"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .output()
        .expect("run flick-gateway");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

const KEY: &str = "9c41e07a2b5df8163e0a7c94d25b18f6a3e7c0d91f4b2a685d3c7e1f09b4a26e";
const SECRET: &str = "Qm9nS2V5LWZvci10ZXN0cy1vbmx5LXJhbmRvbS1pc2g5Xz";

#[test]
fn the_published_placeholders_and_patterned_keys_stop_start_up_and_check_config() {
    // What .env.example held before `flick init` generated every secret: a `.env` copied from it
    // may still carry them.
    let jwt = "change-me-to-at-least-32-random-bytes".to_owned();
    let key = "changeMe/openssl+rand+base64+32/changeMe000=".to_owned();
    let repeated = "a".repeat(48);
    let patterned_key = "0f1e2d3c4b5a69788796a5b4c3d2e1f0".repeat(2);
    /// The environment, what stderr says, and the origin it names.
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: [Case; 5] = [
        (
            &[("JWT_SECRET", &jwt), ("ENCRYPTION_KEY", KEY)],
            "gateway.jwt_secret: is a value published",
            "environment variable JWT_SECRET",
        ),
        (
            &[("JWT_SECRET", SECRET), ("ENCRYPTION_KEY", &key)],
            "encryption.key: is a value published",
            "environment variable ENCRYPTION_KEY",
        ),
        (
            &[
                ("FLICK_GATEWAY__JWT_SECRET", &repeated),
                ("ENCRYPTION_KEY", KEY),
            ],
            "gateway.jwt_secret: is one character repeated",
            "environment variable FLICK_GATEWAY__JWT_SECRET",
        ),
        (
            &[("JWT_SECRET", SECRET), ("ENCRYPTION_KEY", &patterned_key)],
            "encryption.key: is a short pattern repeated",
            "environment variable ENCRYPTION_KEY",
        ),
        (
            &[
                ("JWT_SECRET", SECRET),
                ("ENCRYPTION_KEY", KEY),
                ("FLICK_NATS__USER", "gateway"),
                ("FLICK_NATS__PASSWORD", "change-me-gateway"),
            ],
            "nats.password: is a value published",
            "environment variable FLICK_NATS__PASSWORD",
        ),
    ];
    for (env, expected, origin) in cases {
        for args in [&[][..], &["check-config"][..]] {
            let (code, stderr) = gateway_with(args, env);
            assert_eq!(code, Some(2), "{args:?} {stderr}");
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
            assert!(stderr.contains(expected), "{expected:?} not in {stderr}");
            assert!(
                stderr.contains("openssl rand"),
                "how to generate one: {stderr}"
            );
            assert!(stderr.contains(origin), "{origin:?} not in {stderr}");
            for (_, value) in env {
                assert!(
                    value.len() < 24 || !stderr.contains(value),
                    "the secret itself is never printed: {stderr}"
                );
            }
        }
    }
    let (code, stdout) = {
        let output = Command::new(env!("CARGO_BIN_EXE_flick-gateway"))
            .arg("check-config")
            .env_clear()
            .envs([("JWT_SECRET", SECRET), ("ENCRYPTION_KEY", KEY)])
            .output()
            .expect("run flick-gateway");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    assert_eq!(
        code,
        Some(0),
        "generated-looking secrets are accepted: {stdout}"
    );
}

#[test]
fn a_short_jwt_secret_or_a_bad_encryption_key_stops_start_up_with_one_line() {
    let cases: [(&[(&str, &str)], &str); 4] = [
        (
            &[("ENCRYPTION_KEY", KEY)],
            "gateway.jwt_secret: is required",
        ),
        (
            &[("ENCRYPTION_KEY", KEY), ("JWT_SECRET", "your-secret-key")],
            "gateway.jwt_secret: is 15 bytes",
        ),
        (&[("JWT_SECRET", SECRET)], "encryption.key: is required"),
        (
            &[
                ("JWT_SECRET", SECRET),
                ("ENCRYPTION_KEY", "your-32-byte-key"),
            ],
            "encryption.key: must be 32 bytes",
        ),
    ];
    for (env, expected) in cases {
        let (code, stderr) = gateway(env);
        assert_eq!(code, Some(2), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(expected), "{expected:?} not in {stderr}");
        assert!(
            !stderr.contains("your-secret-key"),
            "the secret itself is never printed"
        );
    }
}
