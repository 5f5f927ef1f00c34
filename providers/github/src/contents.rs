//! Repository contents: one file, its base64 `content` decoded ([`File`]).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde::Deserialize;

/// A file of a repository (`content-file`), its content decoded.
///
/// GitHub sends the content base64-encoded with line breaks every 60 characters; it is decoded
/// when the response is. A directory, a symlink or a submodule at the path is not a file: the
/// call fails with a decode error naming what was found.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawFile")]
#[non_exhaustive]
pub struct File {
    /// The file name.
    pub name: String,
    /// The path in the repository.
    pub path: String,
    /// The blob SHA.
    pub sha: String,
    /// The size in bytes.
    pub size: u64,
    /// The content, decoded.
    pub content: Bytes,
    /// The web page.
    pub html_url: Option<String>,
    /// The raw download URL.
    pub download_url: Option<String>,
}

impl File {
    /// The content as UTF-8 text, if it is.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.content).ok()
    }
}

#[derive(Deserialize)]
struct RawFile {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    encoding: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    sha: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    html_url: Option<String>,
    #[serde(default)]
    download_url: Option<String>,
}

impl TryFrom<RawFile> for File {
    type Error = String;

    fn try_from(raw: RawFile) -> Result<Self, String> {
        if raw.kind != "file" {
            return Err(format!("`{}` is a {}, not a file", raw.path, raw.kind));
        }
        let text = raw.content.unwrap_or_default();
        let content = match raw.encoding.as_deref() {
            Some("base64") | None => {
                let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
                STANDARD
                    .decode(compact.as_bytes())
                    .map_err(|e| format!("`{}`: bad base64 content: {e}", raw.path))?
            }
            Some("none") | Some("") => {
                return Err(format!(
                    "`{}` is too large to be returned inline ({} bytes); fetch download_url",
                    raw.path, raw.size
                ));
            }
            Some(other) => text_or_error(other, &raw.path, text)?,
        };
        Ok(Self {
            name: raw.name,
            path: raw.path,
            sha: raw.sha,
            size: raw.size,
            content: Bytes::from(content),
            html_url: raw.html_url,
            download_url: raw.download_url,
        })
    }
}

fn text_or_error(encoding: &str, path: &str, text: String) -> Result<Vec<u8>, String> {
    if encoding.eq_ignore_ascii_case("utf-8") {
        Ok(text.into_bytes())
    } else {
        Err(format!("`{path}`: unknown content encoding `{encoding}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_decodes_its_wrapped_base64() {
        let file: File = serde_json::from_str(
            r#"{"type":"file","encoding":"base64","size":13,"name":"README.md","path":"README.md",
            "content":"SGVsbG8s\nIFdvcmxkIQ==\n","sha":"3d21ec53a331a6f037a91c368710b99387d012c1",
            "url":"https://api.github.com/repos/o/r/contents/README.md",
            "html_url":"https://github.com/o/r/blob/master/README.md",
            "download_url":"https://raw.githubusercontent.com/o/r/master/README.md","_links":{}}"#,
        )
        .unwrap();
        assert_eq!(file.text(), Some("Hello, World!"));
        assert_eq!(file.size, 13);
    }

    #[test]
    fn a_directory_or_bad_base64_is_an_error() {
        let dir = serde_json::from_str::<File>(r#"{"type":"dir","path":"src"}"#).unwrap_err();
        assert!(dir.to_string().contains("`src` is a dir"), "{dir}");
        let bad = serde_json::from_str::<File>(
            r#"{"type":"file","encoding":"base64","path":"a","content":"!!!"}"#,
        )
        .unwrap_err();
        assert!(bad.to_string().contains("bad base64"), "{bad}");
        let large = serde_json::from_str::<File>(
            r#"{"type":"file","encoding":"none","path":"big.bin","size":2000000,"content":""}"#,
        )
        .unwrap_err();
        assert!(large.to_string().contains("download_url"), "{large}");
    }
}
