//! [`Tree`]: a statement's syntax tree, built only when something reads it.
//!
//! A statement of a shape [`Analyses`](crate::Analyses) has seen is the
//! shape's tree with other constants. Most such statements never need their
//! own tree: a PostgreSQL engine passes the client's text through, and the
//! router reads the shape's cached facts. Copying the shape's tree and
//! putting the constants in cost about a twentieth of Floe's CPU per
//! `pgbench -S` statement (`benchmarks/RESULTS.md`, session 13), so it
//! happens on first read.

use std::fmt;
use std::ops::{ControlFlow, Deref, DerefMut};
use std::sync::{Arc, OnceLock};

use sqlparser::ast::{Expr, Statement, Value, visit_expressions_mut};
use sqlparser::tokenizer::Location;

/// A statement's syntax tree: read it as a [`Statement`] (`&*tree`,
/// `tree.to_string()`, any `&Statement` parameter).
#[derive(Clone)]
pub struct Tree(Inner);

#[derive(Clone)]
enum Inner {
    // Boxed: a `Statement` is ~2.5 KB, and an `Analysis` (which holds its
    // tree) is moved along the whole statement path and kept in its futures.
    Parsed(Box<Statement>),
    Shaped {
        pending: Pending,
        built: OnceLock<Box<Statement>>,
    },
}

/// A shape's tree and the constants to put in it.
#[derive(Clone)]
struct Pending {
    template: Arc<Statement>,
    /// Where each constant's value starts in `template`.
    slots: Arc<[Location]>,
    values: Vec<Value>,
}

impl Tree {
    /// A tree parsed from its own text.
    pub fn new(statement: Statement) -> Self {
        Tree(Inner::Parsed(Box::new(statement)))
    }

    /// `template` with `values[i]` in place of the value whose span starts at
    /// `slots[i]`, built on first read. The caller has checked that each slot
    /// is the start of exactly one value of `template`.
    pub(crate) fn shaped(
        template: Arc<Statement>,
        slots: Arc<[Location]>,
        values: Vec<Value>,
    ) -> Self {
        Tree(Inner::Shaped {
            pending: Pending {
                template,
                slots,
                values,
            },
            built: OnceLock::new(),
        })
    }

    /// The statement, owned.
    pub fn into_statement(self) -> Statement {
        match self.0 {
            Inner::Parsed(statement) => *statement,
            Inner::Shaped { pending, built } => {
                built.into_inner().map_or_else(|| pending.build(), |b| *b)
            }
        }
    }

    /// Whether the tree has been built (for tests of the paths that should
    /// not need it).
    pub fn is_built(&self) -> bool {
        match &self.0 {
            Inner::Parsed(_) => true,
            Inner::Shaped { built, .. } => built.get().is_some(),
        }
    }
}

impl Pending {
    fn build(&self) -> Statement {
        let mut statement = Statement::clone(&self.template);
        let _ = visit_expressions_mut(&mut statement, |expr| {
            if let Expr::Value(value) = expr
                && let Some(slot) = self.slots.iter().position(|s| *s == value.span.start)
                && let Some(new) = self.values.get(slot)
            {
                value.value = new.clone();
            }
            ControlFlow::<()>::Continue(())
        });
        statement
    }
}

impl Deref for Tree {
    type Target = Statement;

    fn deref(&self) -> &Statement {
        match &self.0 {
            Inner::Parsed(statement) => statement,
            Inner::Shaped { pending, built } => built.get_or_init(|| Box::new(pending.build())),
        }
    }
}

impl DerefMut for Tree {
    fn deref_mut(&mut self) -> &mut Statement {
        if let Inner::Shaped { pending, built } = &mut self.0 {
            let statement = built.take().unwrap_or_else(|| Box::new(pending.build()));
            self.0 = Inner::Parsed(statement);
        }
        match &mut self.0 {
            Inner::Parsed(statement) => statement,
            // Made `Parsed` just above.
            Inner::Shaped { .. } => unreachable!("a shaped tree is built before it is changed"),
        }
    }
}

impl From<Statement> for Tree {
    fn from(statement: Statement) -> Self {
        Tree::new(statement)
    }
}

impl PartialEq for Tree {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl fmt::Debug for Tree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl fmt::Display for Tree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}
