//! `Variables` answers variable lookups for expression evaluation.

use super::set::Variables;
use crate::ci::expr::VarLookup;

impl VarLookup for Variables {
    fn lookup(&self, name: &str) -> Option<&str> {
        Variables::lookup(self, name)
    }
}
