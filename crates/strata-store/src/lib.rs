//! strata-store (being written)
