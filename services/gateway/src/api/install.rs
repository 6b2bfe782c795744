//! `/install.sh` and `/downloads/…`: what a host needs to join the hub with one command. The
//! gateway serves the installer (with the hardened systemd unit inside) and the collector
//! binary it ships with, and the binary's SHA-256, which the installer checks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use tower::ServiceExt as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::state::AppState;

const INSTALLER: &str = include_str!("../../../collector/install/install.sh");
const UNIT: &str = include_str!("../../../collector/install/flick-collector.service");
const BINARY_PREFIX: &str = "flick-collector-linux-";
/// Where the gateway's image puts the collector binaries it serves.
pub const INSTALLED_DIR: &str = "/usr/share/flick/downloads";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(installer))
        .routes(routes!(download))
}

/// The collector binaries this gateway serves, by file name, with their SHA-256, and the
/// installer with those checksums written in.
#[derive(Debug, Default)]
pub struct Downloads {
    files: BTreeMap<String, (PathBuf, String)>,
    installer: String,
    /// SHA-256 (hex) of `installer`: the install command checks the script against it, and the
    /// script checks the binary, so one checksum shown in the dashboard covers both.
    pub installer_sha256: String,
}

/// `install.sh` with the unit and the binaries' checksums in it.
fn render_installer(files: &BTreeMap<String, (PathBuf, String)>) -> String {
    let checksums: Vec<String> = files
        .iter()
        .map(|(name, (_, sha256))| format!("{name} {sha256}"))
        .collect();
    INSTALLER
        .replace("@UNIT@", UNIT.trim_end())
        .replace("@CHECKSUMS@", &checksums.join("\n"))
}

impl Downloads {
    /// The `flick-collector-linux-<arch>` files of `dir`; without a directory, those of
    /// [`INSTALLED_DIR`] (the image) when it exists, else the `flick-collector` beside this
    /// gateway's own binary (a source build, `flick all`), for this machine's architecture.
    pub fn load(dir: Option<&Path>) -> anyhow::Result<Arc<Self>> {
        let mut found: Vec<(String, PathBuf)> = Vec::new();
        let installed = Path::new(INSTALLED_DIR);
        let dir = dir.or_else(|| installed.is_dir().then_some(installed));
        match dir {
            Some(dir) => {
                for entry in std::fs::read_dir(dir)? {
                    let entry = entry?;
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if name.starts_with(BINARY_PREFIX) && !name.ends_with(".sha256") {
                        found.push((name, entry.path()));
                    }
                }
            }
            None => {
                if let Some(beside) = std::env::current_exe()
                    .ok()
                    .and_then(|exe| exe.parent().map(|dir| dir.join("flick-collector")))
                    .filter(|path| path.is_file())
                {
                    found.push((format!("{BINARY_PREFIX}{}", std::env::consts::ARCH), beside));
                }
            }
        }
        let mut files = BTreeMap::new();
        for (name, path) in found {
            let mut hasher = Sha256::new();
            let mut file = std::fs::File::open(&path)?;
            let mut buffer = vec![0u8; 1 << 16];
            loop {
                let read = std::io::Read::read(&mut file, &mut buffer)?;
                if read == 0 {
                    break;
                }
                hasher.update(&buffer[..read]);
            }
            files.insert(name, (path, hex::encode(hasher.finalize())));
        }
        tracing::info!(binaries = ?files.keys().collect::<Vec<_>>(), "Collector downloads");
        let installer = render_installer(&files);
        let installer_sha256 = hex::encode(Sha256::digest(installer.as_bytes()));
        Ok(Arc::new(Self {
            files,
            installer,
            installer_sha256,
        }))
    }
}

/// The installer: downloads the collector, enrols it, installs a hardened systemd unit.
#[utoipa::path(get, path = "/install.sh", tag = "servers",
    responses((status = 200, description = "A POSIX shell script", content_type = "text/x-shellscript")))]
async fn installer(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/x-shellscript; charset=utf-8")],
        state.downloads.installer.clone(),
    )
        .into_response()
}

/// `flick-collector-linux-<arch>` (the binary) or `….sha256` (its checksum, `sha256sum` format).
#[utoipa::path(get, path = "/downloads/{file}", tag = "servers",
    params(("file" = String, Path, description = "flick-collector-linux-x86_64, or that name with .sha256")),
    responses((status = 200, description = "The file"), (status = 404, description = "No such build")))]
async fn download(
    State(state): State<AppState>,
    UrlPath(file): UrlPath<String>,
    request: Request,
) -> Response {
    let (name, checksum) = match file.strip_suffix(".sha256") {
        Some(name) => (name, true),
        None => (file.as_str(), false),
    };
    let Some((path, sha256)) = state.downloads.files.get(name) else {
        return ApiError::NotFound("download").into_response();
    };
    if checksum {
        return (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{sha256}  {name}\n"),
        )
            .into_response();
    }
    let served = tower_http::services::ServeFile::new(path)
        .oneshot(request)
        .await;
    match served {
        Ok(response) => {
            let mut response = response.map(axum::body::Body::new);
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            response
        }
        Err(err) => {
            ApiError::Internal(anyhow::anyhow!("serve {}: {err}", path.display())).into_response()
        }
    }
}
