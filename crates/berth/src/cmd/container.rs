//! Container commands (run, create, start, ps, exec, ...).
