//! The gateway refuses to start without a strong signing key and a valid encryption key, with
//! one line naming the setting.

use std::process::Command;

fn gateway(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_flick-gateway"))
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

const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const SECRET: &str = "a-signing-key-of-at-least-thirty-two-bytes";

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
