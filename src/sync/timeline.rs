//! The words of a customer's timeline that are read back, not only shown: a stage line says
//! where the customer moved and is how `kycdash export` tells when a decision was seen. One
//! place writes and parses them, so the two cannot drift apart.

use crate::domain::Stage;

/// The `kind` of a timeline line that records a change of stage.
pub const STAGE: &str = "stage";

/// The text of a stage line: `from → to`, or `first seen: to` the first time.
pub fn stage_text(from: Option<Stage>, to: Stage) -> String {
    match from {
        Some(from) => format!("{from} → {to}"),
        None => format!("first seen: {to}"),
    }
}

/// What a stage line says: (the stage before, if any; the stage after). `None` for a text no
/// build wrote.
pub fn parse_stage_text(text: &str) -> Option<(Option<Stage>, Stage)> {
    if let Some(to) = text.strip_prefix("first seen: ") {
        return Some((None, Stage::parse(to)?));
    }
    let (from, to) = text.split_once(" → ")?;
    Some((Some(Stage::parse(from)?), Stage::parse(to)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stage_line_reads_back_as_written() {
        for to in Stage::ALL {
            assert_eq!(parse_stage_text(&stage_text(None, to)), Some((None, to)));
            for from in Stage::ALL {
                assert_eq!(
                    parse_stage_text(&stage_text(Some(from), to)),
                    Some((Some(from), to))
                );
            }
        }
        assert_eq!(
            parse_stage_text("awaiting_decision → approved").map(|s| s.1),
            Some(Stage::Approved)
        );
        assert_eq!(parse_stage_text("CUSTOMER_KYC_FINISHED"), None);
        assert_eq!(parse_stage_text("nowhere → approved"), None);
    }
}
