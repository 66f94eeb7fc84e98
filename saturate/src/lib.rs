//! Equality saturation over traces.
//!
//! To come (issue 4): the e-graph language mirroring `ir`'s ops, the rule library grouped
//! by family, type and constant analyses, a cost model measured on real engines, and
//! sharing-aware extraction. Trace in, candidate trace out; it never claims a candidate
//! is correct — that is `verify`'s job.
