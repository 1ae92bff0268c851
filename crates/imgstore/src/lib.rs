//! imgstore porcelain (being written: see issue 7).
