//! Paging of listings, as DocSpace validates it.

use crate::{Error, Result};

/// `(startIndex, count)` of a listing: `count` 1 to 100 (default 100), `startIndex` ≥ 0
/// (default 0).
pub(crate) fn page(count: Option<i64>, start: Option<i64>) -> Result<(usize, usize)> {
    let count = count.unwrap_or(100);
    if !(1..=100).contains(&count) {
        return Err(Error::validation("Count", "The field Count must be between 1 and 100."));
    }
    let start = start.unwrap_or(0);
    if start < 0 {
        return Err(Error::validation(
            "StartIndex",
            "The field StartIndex must not be negative.",
        ));
    }
    Ok((start as usize, count as usize))
}

#[cfg(test)]
mod tests {
    use super::page;

    #[test]
    fn bounds() {
        assert_eq!(page(None, None).unwrap(), (0, 100));
        assert_eq!(page(Some(5), Some(10)).unwrap(), (10, 5));
        assert!(page(Some(0), None).is_err());
        assert!(page(Some(101), None).is_err());
        assert!(page(None, Some(-1)).is_err());
    }
}
