//! Compliance documents: their types, and the content check every upload passes (format by
//! magic bytes, never by file name or declared content type; size bounds).

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The largest document the API accepts: 10 MiB.
pub const MAX_DOCUMENT_BYTES: usize = 10 * 1024 * 1024;

/// A document type. A name a newer API uses that this version does not know reads as
/// `Unknown` (a client must not fail on it); nothing accepts an upload of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, strum::IntoStaticStr)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum DocumentType {
    SourceOfFunds,
    W9,
    W8ben,
    BiometricReport,
    ProofOfAddress,
    Unknown(&'static str),
}

impl Serialize for DocumentType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for DocumentType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Ok(DocumentType::from_wire(&name))
    }
}

impl utoipa::PartialSchema for DocumentType {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(DocumentType::ALL.iter().map(|t| t.as_str())))
            .into()
    }
}

impl ToSchema for DocumentType {}

impl DocumentType {
    pub const ALL: [DocumentType; 5] = [
        DocumentType::SourceOfFunds,
        DocumentType::W9,
        DocumentType::W8ben,
        DocumentType::BiometricReport,
        DocumentType::ProofOfAddress,
    ];

    /// The name as the API spells it (strum spells the known ones).
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentType::Unknown(name) => name,
            known => known.into(),
        }
    }

    /// Parses a type this version knows, as the API spells it, ignoring ASCII case (file
    /// names in the inbox are often lower case). What an upload may name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(name.trim()))
    }

    /// Reads a name from an API's answer: one this version does not know is `Unknown`.
    pub fn from_wire(name: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == name)
            .unwrap_or_else(|| DocumentType::Unknown(super::vocabulary::intern(name)))
    }

    /// The formats this type may be uploaded in (none for a type this version does not know).
    pub fn accepted_formats(self) -> &'static [ContentFormat] {
        match self {
            DocumentType::BiometricReport => &[ContentFormat::Pdf],
            DocumentType::Unknown(_) => &[],
            _ => &[ContentFormat::Pdf, ContentFormat::Png, ContentFormat::Jpeg],
        }
    }

    /// Checks an upload's content for this type and returns its format.
    pub fn check_content(self, content: &[u8]) -> Result<ContentFormat, DocumentError> {
        check_size(content.len() as u64)?;
        let format = ContentFormat::sniff(content).ok_or(DocumentError::UnknownFormat)?;
        if !self.accepted_formats().contains(&format) {
            return Err(DocumentError::FormatNotAccepted {
                document_type: self,
                format,
            });
        }
        Ok(format)
    }
}

impl fmt::Display for DocumentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum ContentFormat {
    Pdf,
    Png,
    Jpeg,
}

impl ContentFormat {
    /// Recognizes PDF, PNG and JPEG by their leading bytes.
    pub fn sniff(content: &[u8]) -> Option<Self> {
        if infer::archive::is_pdf(content) {
            Some(ContentFormat::Pdf)
        } else if infer::image::is_png(content) {
            Some(ContentFormat::Png)
        } else if infer::image::is_jpeg(content) {
            Some(ContentFormat::Jpeg)
        } else {
            None
        }
    }
}

impl fmt::Display for ContentFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ContentFormat::Pdf => "PDF",
            ContentFormat::Png => "PNG",
            ContentFormat::Jpeg => "JPEG",
        })
    }
}

/// The size rule alone, for a caller that knows a file's size before reading it: an empty
/// file or one over [`MAX_DOCUMENT_BYTES`] is refused.
pub fn check_size(size: u64) -> Result<(), DocumentError> {
    match size {
        0 => Err(DocumentError::Empty),
        size if size > MAX_DOCUMENT_BYTES as u64 => Err(DocumentError::TooLarge {
            size: usize::try_from(size).unwrap_or(usize::MAX),
        }),
        _ => Ok(()),
    }
}

/// Why a document's content was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error("the file is empty")]
    Empty,
    #[error("the file is {size} bytes; the limit is {MAX_DOCUMENT_BYTES} bytes (10 MiB)")]
    TooLarge { size: usize },
    #[error("the file is not a PDF, PNG or JPEG (checked by its content, not its name)")]
    UnknownFormat,
    #[error("{document_type} must be {}; this file is a {format}", list_formats(document_type.accepted_formats()))]
    FormatNotAccepted {
        document_type: DocumentType,
        format: ContentFormat,
    },
}

fn list_formats(formats: &[ContentFormat]) -> String {
    let names: Vec<String> = formats.iter().map(ToString::to_string).collect();
    match names.as_slice() {
        [one] => format!("a {one}"),
        [init @ .., last] => format!("a {} or {last}", init.join(", ")),
        [] => String::new(),
    }
}

/// The document types a customer has on file, which is all the checks need to know.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocumentsOnFile(BTreeSet<DocumentType>);

impl DocumentsOnFile {
    pub fn has(&self, document_type: DocumentType) -> bool {
        self.0.contains(&document_type)
    }

    pub fn insert(&mut self, document_type: DocumentType) {
        self.0.insert(document_type);
    }
}

impl FromIterator<DocumentType> for DocumentsOnFile {
    fn from_iter<I: IntoIterator<Item = DocumentType>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PDF: &[u8] = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n";
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    const JPEG: &[u8] = b"\xff\xd8\xff\xe0\0\x10JFIF\0";

    #[test]
    fn formats_are_recognized_by_magic_bytes() {
        assert_eq!(ContentFormat::sniff(PDF), Some(ContentFormat::Pdf));
        assert_eq!(ContentFormat::sniff(PNG), Some(ContentFormat::Png));
        assert_eq!(ContentFormat::sniff(JPEG), Some(ContentFormat::Jpeg));
        assert_eq!(ContentFormat::sniff(b"GIF89a......"), None);
        assert_eq!(ContentFormat::sniff(b"hello, world"), None);
    }

    #[test]
    fn every_type_takes_pdf_and_only_biometric_report_refuses_images() {
        for t in DocumentType::ALL {
            assert_eq!(t.check_content(PDF), Ok(ContentFormat::Pdf));
            let image = t.check_content(PNG);
            if t == DocumentType::BiometricReport {
                let err = image.unwrap_err();
                assert_eq!(
                    err.to_string(),
                    "BIOMETRIC_REPORT must be a PDF; this file is a PNG"
                );
            } else {
                assert_eq!(image, Ok(ContentFormat::Png));
                assert_eq!(t.check_content(JPEG), Ok(ContentFormat::Jpeg));
            }
        }
    }

    #[test]
    fn empty_oversized_and_unknown_content_is_refused_with_a_reason() {
        let t = DocumentType::W9;
        assert_eq!(t.check_content(b""), Err(DocumentError::Empty));
        let mut big = PDF.to_vec();
        big.resize(MAX_DOCUMENT_BYTES + 1, 0);
        assert_eq!(
            t.check_content(&big),
            Err(DocumentError::TooLarge {
                size: MAX_DOCUMENT_BYTES + 1
            })
        );
        big.truncate(MAX_DOCUMENT_BYTES);
        assert_eq!(t.check_content(&big), Ok(ContentFormat::Pdf));
        assert_eq!(t.check_content(b"plain text"), Err(DocumentError::UnknownFormat));
        assert_eq!(
            DocumentError::FormatNotAccepted {
                document_type: t,
                format: ContentFormat::Pdf
            }
            .to_string(),
            "W9 must be a PDF, PNG or JPEG; this file is a PDF"
        );
    }

    #[test]
    fn type_names_parse_case_insensitively_and_round_trip() {
        for t in DocumentType::ALL {
            assert_eq!(DocumentType::parse(t.as_str()), Some(t));
            assert_eq!(DocumentType::parse(&t.as_str().to_lowercase()), Some(t));
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.as_str()));
            assert_eq!(serde_json::from_str::<DocumentType>(&json).unwrap(), t);
        }
        assert_eq!(DocumentType::parse("PASSPORT"), None);
    }
}
