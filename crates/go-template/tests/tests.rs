//! Integration tests of `go-template`, in one binary.

mod fuzz;
mod go_exec;
mod unit;
