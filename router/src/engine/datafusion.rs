//! The embedded engine: DataFusion over an Iceberg catalog, in process.
//!
//! The Iceberg catalog is registered through `iceberg-datafusion`, wrapped in
//! [`LakeCatalogProvider`] so that in-memory schemas (`pg_catalog`, which
//! `datafusion-pg-catalog` provides for psql, JDBC and BI tools) can sit beside
//! the Iceberg namespaces. Statements that arrive in the PostgreSQL dialect go
//! through `datafusion-pg-catalog`'s compatibility parser first, which rewrites
//! the PostgreSQL-isms clients send (`::regclass`, `pg_catalog.` prefixes, ...)
//! into SQL DataFusion plans.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use arrow::datatypes::{DataType, Schema};
use arrow::error::ArrowError;
use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, SchemaProvider};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{ParamValues, SchemaError};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{
    Cast, ColumnarValue, Expr, LogicalPlan, TryCast, Volatility, create_udf,
};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::scalar::ScalarValue;
use datafusion::sql::TableReference;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast;
use datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_pg_catalog::setup_pg_catalog;
use datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use floe_dialects::{
    Analysis, ColumnTypes, Dialect, TranslationCache, adapt, analyze_statement, translate_with,
};
use futures::{StreamExt, TryStreamExt};
use iceberg_datafusion::IcebergCatalogProvider;
use tokio::runtime::Handle;

use super::metered_scan::meter_scans;
use super::offload::{output_on, run_on};
use super::table_cache::CachingCatalog;
use super::{Engine, Prepared, QueryOutput, Request, Scope};
use crate::{DataErrorKind, Error, Result};

/// How to build a [`DataFusionEngine`].
#[derive(Debug, Clone)]
pub struct DataFusionEngineOptions {
    /// The engine's name in configuration, logs and metrics.
    pub name: String,
    /// The Iceberg catalogs, each under the name it has in SQL (`lake` in
    /// `lake.demo.trips`). The first is the default catalog. Invariant: not empty.
    pub catalogs: Vec<(String, Arc<dyn iceberg::Catalog>)>,
    /// The schema unqualified table names resolve in. It must exist in the
    /// default catalog.
    pub default_schema: String,
    /// How many partitions DataFusion plans with; 0 means one per core.
    pub target_partitions: usize,
    /// The version string `SELECT version()` reports.
    pub version: String,
    /// The runtime that plans and executes statements; `None` means the
    /// caller's. The daemon gives its CPU runtime, so that a long query cannot
    /// stall the front ends' runtime (see `offload.rs`).
    pub runtime: Option<Handle>,
}

impl DataFusionEngineOptions {
    /// Options for one catalog with the defaults: schema `public`, one
    /// partition per core.
    pub fn new(
        name: impl Into<String>,
        catalog_name: impl Into<String>,
        catalog: Arc<dyn iceberg::Catalog>,
    ) -> Self {
        DataFusionEngineOptions {
            name: name.into(),
            catalogs: vec![(catalog_name.into(), catalog)],
            default_schema: "public".to_owned(),
            target_partitions: 0,
            version: format!("PostgreSQL 16.6 (Floe {})", env!("CARGO_PKG_VERSION")),
            runtime: None,
        }
    }
}

/// DataFusion over an Iceberg catalog.
pub struct DataFusionEngine {
    core: Arc<Core>,
    /// Where statements are planned and run; `None`: the caller's runtime.
    runtime: Option<Handle>,
}

/// The engine's state, shared with the statements running on its runtime.
struct Core {
    name: String,
    ctx: SessionContext,
    pg_parser: PostgresCompatibilityParser,
    /// MySQL statements translated to DataFusion's SQL, by shape.
    translations: TranslationCache,
}

impl std::fmt::Debug for DataFusionEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataFusionEngine")
            .field("name", &self.core.name)
            .field("session", &self.core.ctx.session_id())
            .finish_non_exhaustive()
    }
}

impl DataFusionEngine {
    /// Builds the engine: registers the Iceberg catalog, `pg_catalog` and the
    /// PostgreSQL compatibility functions.
    ///
    /// # Errors
    ///
    /// [`Error::EngineUnavailable`] when the catalog cannot be listed.
    pub async fn try_new(options: DataFusionEngineOptions) -> Result<Self> {
        let unavailable = |message: String| Error::EngineUnavailable {
            engine: options.name.clone(),
            message,
            retryable: true,
        };
        let Some((default_catalog, _)) = options.catalogs.first() else {
            return Err(Error::Internal(
                "an engine needs at least one catalog".to_owned(),
            ));
        };
        let mut config = SessionConfig::new()
            .with_information_schema(true)
            // `TIMESTAMP WITH TIME ZONE` values carry a zone, as in PostgreSQL,
            // whose sessions start in UTC here.
            .set_str("datafusion.execution.time_zone", "UTC")
            .with_default_catalog_and_schema(default_catalog, &options.default_schema)
            .with_create_default_catalog_and_schema(false);
        if options.target_partitions > 0 {
            config = config.with_target_partitions(options.target_partitions);
        }
        let ctx = SessionContext::new_with_config(config);
        for (name, catalog) in &options.catalogs {
            // Scans reuse an unchanged table's parsed manifests.
            let cached: Arc<dyn iceberg::Catalog> =
                Arc::new(CachingCatalog::new(Arc::clone(catalog)));
            let iceberg = IcebergCatalogProvider::try_new(cached)
                .await
                .map_err(|e| unavailable(format!("cannot list catalog {name}: {e}")))?;
            ctx.register_catalog(name, Arc::new(LakeCatalogProvider::new(Arc::new(iceberg))));
        }
        setup_pg_catalog(&ctx, default_catalog, EmptyContextProvider)
            .map_err(|e| Error::Internal(format!("cannot register pg_catalog: {e}")))?;
        let version = options.version.clone();
        ctx.register_udf(create_udf(
            "version",
            vec![],
            DataType::Utf8,
            Volatility::Immutable,
            Arc::new(move |_| {
                Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(
                    version.clone(),
                ))))
            }),
        ));
        Ok(DataFusionEngine {
            core: Arc::new(Core {
                name: options.name,
                ctx,
                pg_parser: PostgresCompatibilityParser::new(),
                translations: TranslationCache::new(4096),
            }),
            runtime: options.runtime,
        })
    }
}

impl Core {
    /// Parses (with PostgreSQL compatibility rewrites where the client spoke
    /// PostgreSQL) and plans a statement.
    async fn plan(&self, statement: &Analysis, schema: Option<&str>) -> Result<LogicalPlan> {
        let types = self.column_types(statement, schema).await;
        let (ast, names) = match statement.dialect {
            Dialect::Postgres => {
                let mut rewritten = self
                    .pg_parser
                    .parse(statement.sql())
                    .map_err(|e| Error::Syntax(e.to_string()))?;
                if rewritten.len() != 1 {
                    return Err(Error::Internal(format!(
                        "compatibility rewrite produced {} statements from one",
                        rewritten.len()
                    )));
                }
                let mut ast = rewritten.remove(0);
                let names = postgres_column_names(&ast);
                // DataFusion reads PostgreSQL's syntax; where a function means
                // something else, Floe's rules rewrite it.
                adapt(&mut ast, Dialect::Postgres, Dialect::DataFusion, &types)?;
                (ast, names)
            }
            Dialect::MySql => {
                let names = mysql_column_names(&statement.statement);
                (self.translate_mysql(statement, &types)?, names)
            }
            _ => (ast::Statement::clone(&statement.statement), None),
        };
        let mut ast = ast;
        if let Some(names) = &names {
            alias_projection(&mut ast, names);
        }
        let mut state = self.ctx.state();
        if let Some(schema) = schema {
            // The state is this statement's own copy: the change stays here.
            schema.clone_into(&mut state.config_mut().options_mut().catalog.default_schema);
        }
        let plan = state
            .statement_to_plan(DfStatement::Statement(Box::new(ast)))
            .await
            .map_err(map_error)?;
        Ok(match names {
            Some(names) => rename_columns(plan, &names)?,
            None => plan,
        })
    }
}

#[async_trait]
impl Engine for DataFusionEngine {
    fn name(&self) -> &str {
        &self.core.name
    }

    fn dialect(&self) -> Dialect {
        Dialect::DataFusion
    }

    /// The embedded engine plans PostgreSQL and MySQL input itself, with its
    /// own compatibility layer and the client's column naming.
    fn accepts(&self, dialect: Dialect) -> bool {
        matches!(
            dialect,
            Dialect::DataFusion | Dialect::Postgres | Dialect::MySql
        )
    }

    async fn prepare(&self, statement: &Analysis, scope: Scope<'_>) -> Result<Prepared> {
        let schema = scope.schema;
        let Some(runtime) = &self.runtime else {
            return self.core.prepare(statement, schema).await;
        };
        let core = Arc::clone(&self.core);
        let statement = statement.clone();
        let schema = schema.map(str::to_owned);
        run_on(runtime, async move {
            core.prepare(&statement, schema.as_deref()).await
        })
        .await
    }

    async fn execute(&self, request: Request<'_>) -> Result<QueryOutput> {
        let Some(runtime) = &self.runtime else {
            return self.core.execute(request).await;
        };
        let core = Arc::clone(&self.core);
        let statement = request.statement.clone();
        let params = request.params.to_vec();
        let prepared = request.prepared.cloned();
        let schema = request.schema.map(str::to_owned);
        let scan = request.scan.cloned();
        let pg_text = request.pg_text;
        let mysql_rows = request.mysql_rows;
        output_on(runtime, async move {
            let request = Request {
                statement: &statement,
                params: &params,
                prepared: prepared.as_ref(),
                schema: schema.as_deref(),
                scan: scan.as_ref(),
                pg_text,
                mysql_rows,
                // The embedded engine keeps no server session to apply them to.
                settings: &[],
            };
            core.execute(request).await
        })
        .await
    }
}

impl Core {
    /// Plans a statement and describes its parameters and rows.
    async fn prepare(&self, statement: &Analysis, schema: Option<&str>) -> Result<Prepared> {
        let plan = self.plan(statement, schema).await?;
        let cast_to = placeholder_casts(&plan);
        let mut params: Vec<(usize, Option<DataType>)> = plan
            .get_parameter_types()
            .map_err(map_error)?
            .into_iter()
            .filter_map(|(name, ty)| {
                // PostgreSQL types `$1::bigint` as bigint; DataFusion leaves it open.
                let ty = ty.or_else(|| cast_to.get(&name).cloned());
                // DataFusion names positional parameters `$1`, `$2`, ...
                name.trim_start_matches('$')
                    .parse::<usize>()
                    .ok()
                    .map(|n| (n, ty))
            })
            .collect();
        params.sort_by_key(|(n, _)| *n);
        let param_count = params.last().map_or(0, |(n, _)| *n);
        let mut param_types = vec![None; param_count];
        for (n, ty) in params {
            if let Some(slot) = n.checked_sub(1).and_then(|i| param_types.get_mut(i)) {
                *slot = ty;
            }
        }
        let returns_rows = returns_rows(&plan);
        let schema = if returns_rows {
            Arc::new(plan.schema().as_arrow().clone())
        } else {
            Arc::new(Schema::empty())
        };
        Ok(Prepared {
            param_types,
            schema,
            returns_rows,
            plan: Some(Arc::new(plan)),
            engine: None,
        })
    }

    /// Runs a statement, on the runtime this is called from.
    async fn execute(&self, request: Request<'_>) -> Result<QueryOutput> {
        let cached = request
            .prepared
            .and_then(|p| p.plan.as_ref())
            .and_then(|plan| plan.downcast_ref::<LogicalPlan>());
        let mut plan = match cached {
            Some(plan) => plan.clone(),
            None => self.plan(request.statement, request.schema).await?,
        };
        if !request.params.is_empty() {
            plan = plan
                .replace_params_with_values(&ParamValues::from(request.params.to_vec()))
                .map_err(map_error)?;
        }
        let is_dml = matches!(plan, LogicalPlan::Dml(_));
        let returns_rows = returns_rows(&plan);
        let frame = self
            .ctx
            .execute_logical_plan(plan)
            .await
            .map_err(map_error)?;
        if is_dml {
            // DML plans return one row with the count of rows written; the write
            // and its Iceberg commit happen while this stream is drained.
            let batches = frame.collect().await.map_err(map_error)?;
            let rows = batches
                .iter()
                .filter_map(|b| b.column_by_name("count"))
                .filter_map(|c| c.as_any().downcast_ref::<arrow::array::UInt64Array>())
                .flat_map(|a| a.iter().flatten())
                .sum();
            return Ok(QueryOutput::Command { rows: Some(rows) });
        }
        if !returns_rows {
            // DDL and statements ran while the frame was created.
            return Ok(QueryOutput::Command { rows: None });
        }
        let task_ctx = Arc::new(frame.task_ctx());
        let mut physical = frame.create_physical_plan().await.map_err(map_error)?;
        if let Some(stats) = request.scan {
            physical = meter_scans(physical, stats).map_err(map_error)?;
        }
        let stream =
            datafusion::physical_plan::execute_stream(physical, task_ctx).map_err(map_error)?;
        let schema = stream.schema();
        Ok(QueryOutput::Rows {
            schema,
            stream: stream.map_err(map_error).boxed(),
        })
    }

    /// A MySQL statement in DataFusion's SQL, through Floe's translation
    /// rules: MySQL's functions (`IF`, `DATE_FORMAT`, `LOG`, `YEAR`, ...)
    /// keep their meaning. Parameters (numbered `$1`, `$2`, ... by the front
    /// end) travel through the translation as identifiers, so that a rule
    /// that repeats or reorders an argument keeps each bound to its value.
    fn translate_mysql(&self, statement: &Analysis, types: &ColumnTypes) -> Result<ast::Statement> {
        let mut marked = ast::Statement::clone(&statement.statement);
        let parameters = mark_parameters(&mut marked);
        let source = if parameters {
            marked.to_string()
        } else {
            statement.sql().to_owned()
        };
        let translated = if types.is_empty() {
            self.translations
                .translate(&source, Dialect::MySql, Dialect::DataFusion)?
        } else {
            translate_with(&source, Dialect::MySql, Dialect::DataFusion, types)?
        };
        let [sql] = translated.as_slice() else {
            return Err(Error::Internal(format!(
                "translation gave {} statements for one",
                translated.len()
            )));
        };
        let mut translated = analyze_statement(sql, Dialect::DataFusion)?
            .statement
            .into_statement();
        if parameters {
            unmark_parameters(&mut translated);
        }
        Ok(translated)
    }

    /// The types of the columns of the tables `statement` reads, when a
    /// translation rule may need them (casts, interval arithmetic): looking
    /// tables up costs a catalog read, so other statements skip it.
    async fn column_types(&self, statement: &Analysis, schema: Option<&str>) -> ColumnTypes {
        let mut types = ColumnTypes::default();
        let upper = statement.sql().to_ascii_uppercase();
        if ![
            "CAST", "INTERVAL", "DATE_ADD", "DATE_SUB", "ADDDATE", "SUBDATE", "CONVERT", "/",
        ]
        .iter()
        .any(|w| upper.contains(w))
        {
            return types;
        }
        for table in statement.references().tables {
            let reference = match table.parts.as_slice() {
                [name] => match schema {
                    Some(schema) => TableReference::partial(schema.to_owned(), name.clone()),
                    None => TableReference::bare(name.clone()),
                },
                [schema, name] => TableReference::partial(schema.clone(), name.clone()),
                [catalog, schema, name] => {
                    TableReference::full(catalog.clone(), schema.clone(), name.clone())
                }
                _ => continue,
            };
            let Ok(provider) = self.ctx.table_provider(reference).await else {
                continue;
            };
            for field in provider.schema().fields() {
                types.insert(field.name(), arrow_type_name(field.data_type()));
            }
        }
        types
    }
}

/// The identifier a parameter `$n` travels as through a translation.
const PARAMETER_MARKER: &str = "floe_param_";

/// Replaces parameters `$n` with identifiers `floe_param_n`; true if any.
fn mark_parameters(statement: &mut ast::Statement) -> bool {
    let mut any = false;
    let _ = ast::visit_expressions_mut(statement, |expr| {
        if let ast::Expr::Value(ast::ValueWithSpan {
            value: ast::Value::Placeholder(name),
            ..
        }) = expr
            && let Some(n) = name.strip_prefix('$')
        {
            *expr = ast::Expr::Identifier(ast::Ident::new(format!("{PARAMETER_MARKER}{n}")));
            any = true;
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    any
}

/// Turns `floe_param_n` identifiers back into parameters `$n`.
fn unmark_parameters(statement: &mut ast::Statement) {
    let _ = ast::visit_expressions_mut(statement, |expr| {
        if let ast::Expr::Identifier(ident) = expr
            && let Some(n) = ident
                .value
                .to_ascii_lowercase()
                .strip_prefix(PARAMETER_MARKER)
        {
            *expr = ast::Expr::value(ast::Value::Placeholder(format!("${n}")));
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
}

/// The SQL name of an Arrow type's class, for [`ColumnTypes`].
fn arrow_type_name(data_type: &DataType) -> &'static str {
    match data_type {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => "bigint",
        DataType::Decimal32(..)
        | DataType::Decimal64(..)
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => "decimal",
        DataType::Float16 | DataType::Float32 | DataType::Float64 => "double",
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "text",
        DataType::Date32 | DataType::Date64 => "date",
        DataType::Timestamp(..) => "timestamp",
        DataType::Time32(_) | DataType::Time64(_) => "time",
        DataType::Boolean => "boolean",
        _ => "other",
    }
}

/// The names PostgreSQL gives the output columns of a plain `SELECT`: `count`
/// for `count(*)`, `trip_id` for `t.trip_id`, `?column?` for an expression.
/// `None` when the projection has a wildcard (its width is known only after
/// planning) or the statement is not a `SELECT`.
fn postgres_column_names(statement: &ast::Statement) -> Option<Vec<String>> {
    plain_projection(statement)?
        .iter()
        .map(|item| match item {
            ast::SelectItem::UnnamedExpr(expr) => Some(postgres_name(expr)),
            ast::SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.clone()),
            _ => None,
        })
        .collect()
}

/// The select list of a plain `SELECT` (no set operation), whose output
/// columns Floe names the way the client's database would.
fn plain_projection(statement: &ast::Statement) -> Option<&[ast::SelectItem]> {
    let ast::Statement::Query(query) = statement else {
        return None;
    };
    let ast::SetExpr::Select(select) = query.body.as_ref() else {
        return None;
    };
    Some(&select.projection)
}

/// Gives every computed output column of a plain `SELECT` an alias: its
/// client-facing name, made unique. DataFusion refuses a projection whose
/// expressions share a name (`SELECT CAST(NULL AS INT), CAST(NULL AS DOUBLE)`
/// are both `NULL` to it), which PostgreSQL and MySQL accept.
fn alias_projection(statement: &mut ast::Statement, names: &[String]) {
    let ast::Statement::Query(query) = statement else {
        return;
    };
    let ast::SetExpr::Select(select) = query.body.as_mut() else {
        return;
    };
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (item, name) in select.projection.iter_mut().zip(names) {
        let count = seen.entry(name.as_str()).or_insert(0);
        *count += 1;
        if let ast::SelectItem::UnnamedExpr(expr) = item
            && !matches!(
                expr,
                ast::Expr::Identifier(_) | ast::Expr::CompoundIdentifier(_)
            )
        {
            let alias = if *count == 1 {
                name.clone()
            } else {
                format!("{name}_{count}")
            };
            *item = ast::SelectItem::ExprWithAlias {
                expr: expr.clone(),
                alias: ast::Ident::with_quote('"', alias),
            };
        }
    }
}

/// The names MySQL gives the output columns of a plain `SELECT`: the column
/// name for a column, otherwise the expression as written (`count(*)`,
/// `1 + 1`). `None` as for [`postgres_column_names`].
fn mysql_column_names(statement: &ast::Statement) -> Option<Vec<String>> {
    plain_projection(statement)?
        .iter()
        .map(|item| match item {
            ast::SelectItem::UnnamedExpr(ast::Expr::Identifier(ident)) => Some(ident.value.clone()),
            ast::SelectItem::UnnamedExpr(ast::Expr::CompoundIdentifier(idents)) => {
                idents.last().map(|i| i.value.clone())
            }
            ast::SelectItem::UnnamedExpr(expr) => Some(expr.to_string()),
            ast::SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.clone()),
            _ => None,
        })
        .collect()
}

fn postgres_name(expr: &ast::Expr) -> String {
    match expr {
        ast::Expr::Identifier(ident) => ident.value.clone(),
        ast::Expr::CompoundIdentifier(idents) => idents
            .last()
            .map_or_else(|| "?column?".to_owned(), |i| i.value.clone()),
        ast::Expr::Function(function) => function
            .name
            .0
            .last()
            .and_then(|part| part.as_ident())
            .map_or_else(|| "?column?".to_owned(), |i| i.value.to_lowercase()),
        ast::Expr::Nested(inner) => postgres_name(inner),
        ast::Expr::Cast {
            expr, data_type, ..
        } => match expr.as_ref() {
            ast::Expr::Identifier(_)
            | ast::Expr::CompoundIdentifier(_)
            | ast::Expr::Function(_) => postgres_name(expr),
            _ => postgres_type_name(data_type),
        },
        ast::Expr::Case { .. } => "case".to_owned(),
        ast::Expr::Exists { .. } => "exists".to_owned(),
        _ => "?column?".to_owned(),
    }
}

/// PostgreSQL's internal name of a type, which it uses for `'1'::int` columns.
fn postgres_type_name(data_type: &ast::DataType) -> String {
    use ast::DataType as T;
    match data_type {
        T::SmallInt(_) | T::Int2(_) => "int2",
        T::Int(_) | T::Integer(_) | T::Int4(_) => "int4",
        T::BigInt(_) | T::Int8(_) => "int8",
        T::Real | T::Float4 => "float4",
        T::Double(_) | T::DoublePrecision | T::Float8 => "float8",
        T::Numeric(_) | T::Decimal(_) => "numeric",
        T::Boolean | T::Bool => "bool",
        T::Text => "text",
        T::Varchar(_) | T::CharacterVarying(_) => "varchar",
        T::Date => "date",
        T::Timestamp(_, ast::TimezoneInfo::Tz | ast::TimezoneInfo::WithTimeZone) => "timestamptz",
        T::Timestamp(..) => "timestamp",
        T::Bytea => "bytea",
        _ => "?column?",
    }
    .to_owned()
}

/// Renames the plan's output columns, when there is one name per column and
/// the names are distinct (DataFusion requires distinct projection names;
/// PostgreSQL does not, and then DataFusion's own names are kept).
fn rename_columns(plan: LogicalPlan, names: &[String]) -> Result<LogicalPlan> {
    let schema = plan.schema();
    if names.len() != schema.fields().len()
        || names.iter().collect::<std::collections::HashSet<_>>().len() != names.len()
        || schema
            .iter()
            .zip(names)
            .all(|((_, field), name)| field.name() == name)
    {
        return Ok(plan);
    }
    let columns: Vec<Expr> = schema
        .iter()
        .zip(names)
        .map(|((qualifier, field), name)| {
            Expr::Column(datafusion::common::Column::new(
                qualifier.cloned(),
                field.name(),
            ))
            .alias(name)
        })
        .collect();
    datafusion::logical_expr::LogicalPlanBuilder::from(plan)
        .project(columns)
        .and_then(|builder| builder.build())
        .map_err(map_error)
}

/// The type each placeholder is cast to (`$1::BIGINT`), where it is.
fn placeholder_casts(plan: &LogicalPlan) -> HashMap<String, DataType> {
    let mut casts = HashMap::new();
    // The closures never fail, so the traversal's result carries nothing.
    let _ = plan.apply_with_subqueries(|node| {
        node.apply_expressions(|expr| {
            expr.apply(|e| {
                if let Expr::Cast(Cast { expr, data_type })
                | Expr::TryCast(TryCast { expr, data_type }) = e
                    && let Expr::Placeholder(placeholder) = expr.as_ref()
                {
                    casts
                        .entry(placeholder.id.clone())
                        .or_insert_with(|| data_type.clone());
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    });
    casts
}

fn returns_rows(plan: &LogicalPlan) -> bool {
    !matches!(
        plan,
        LogicalPlan::Dml(_)
            | LogicalPlan::Ddl(_)
            | LogicalPlan::Statement(_)
            | LogicalPlan::Copy(_)
    )
}

/// Maps a DataFusion error to the category a client can act on. This is the
/// one place that reads DataFusion's error variants.
pub(crate) fn map_error(e: DataFusionError) -> Error {
    match e {
        DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => {
            map_error(*inner)
        }
        DataFusionError::Shared(inner) => map_error(
            Arc::try_unwrap(inner)
                .unwrap_or_else(|shared| DataFusionError::Execution(shared.to_string())),
        ),
        DataFusionError::Collection(mut errors) if !errors.is_empty() => {
            map_error(errors.remove(0))
        }
        DataFusionError::SQL(e, _) => Error::Syntax(e.to_string()),
        DataFusionError::SchemaError(e, _) => match *e {
            SchemaError::FieldNotFound { .. } => Error::UndefinedColumn(e.to_string()),
            other => Error::InvalidInput(other.to_string()),
        },
        DataFusionError::Plan(message) => {
            let lower = message.to_ascii_lowercase();
            if (lower.starts_with("table '") && lower.contains("not found"))
                || lower.contains("failed to resolve schema")
            {
                Error::UndefinedTable(message)
            } else {
                Error::InvalidInput(message)
            }
        }
        DataFusionError::NotImplemented(message) => Error::Unsupported(message),
        DataFusionError::ArrowError(e, _) => map_arrow_error(*e),
        DataFusionError::Execution(message) => {
            if message.to_ascii_lowercase().contains("divide by zero") {
                Error::Data {
                    kind: DataErrorKind::DivisionByZero,
                    message,
                }
            } else {
                Error::InvalidInput(message)
            }
        }
        DataFusionError::Configuration(message) => Error::InvalidInput(message),
        DataFusionError::ResourcesExhausted(message) => Error::EngineUnavailable {
            engine: "datafusion".to_owned(),
            message,
            retryable: true,
        },
        DataFusionError::External(e) => match e.downcast::<ArrowError>() {
            Ok(arrow) => map_arrow_error(*arrow),
            Err(e) => Error::Internal(e.to_string()),
        },
        other => Error::Internal(other.to_string()),
    }
}

fn map_arrow_error(e: ArrowError) -> Error {
    let kind = match &e {
        ArrowError::DivideByZero => DataErrorKind::DivisionByZero,
        ArrowError::ArithmeticOverflow(_) => DataErrorKind::NumericOutOfRange,
        ArrowError::CastError(_)
        | ArrowError::ParseError(_)
        | ArrowError::InvalidArgumentError(_) => DataErrorKind::InvalidText,
        _ => DataErrorKind::Other,
    };
    Error::Data {
        kind,
        message: e.to_string(),
    }
}

/// The Iceberg catalog as DataFusion sees it, plus in-memory schemas
/// (`pg_catalog`) registered beside the Iceberg namespaces.
///
/// `iceberg-datafusion`'s provider cannot register schemas, which
/// `datafusion-pg-catalog` needs; this wrapper holds those extra schemas and
/// asks Iceberg for everything else.
#[derive(Debug)]
struct LakeCatalogProvider {
    iceberg: Arc<dyn CatalogProvider>,
    extra: RwLock<HashMap<String, Arc<dyn SchemaProvider>>>,
}

impl LakeCatalogProvider {
    fn new(iceberg: Arc<dyn CatalogProvider>) -> Self {
        LakeCatalogProvider {
            iceberg,
            extra: RwLock::new(HashMap::new()),
        }
    }
}

impl CatalogProvider for LakeCatalogProvider {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema_names(&self) -> Vec<String> {
        let mut names = self.iceberg.schema_names();
        if let Ok(extra) = self.extra.read() {
            names.extend(extra.keys().cloned());
        }
        names.sort();
        names.dedup();
        names
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        let extra = self
            .extra
            .read()
            .ok()
            .and_then(|extra| extra.get(name).cloned());
        extra.or_else(|| {
            self.iceberg
                .schema(name)
                .map(|inner| Arc::new(LakeSchemaProvider { inner }) as Arc<dyn SchemaProvider>)
        })
    }

    fn register_schema(
        &self,
        name: &str,
        schema: Arc<dyn SchemaProvider>,
    ) -> datafusion::error::Result<Option<Arc<dyn SchemaProvider>>> {
        let mut extra = self
            .extra
            .write()
            .map_err(|_| DataFusionError::Internal("catalog lock poisoned".to_owned()))?;
        Ok(extra.insert(name.to_owned(), schema))
    }
}

/// An Iceberg namespace as DataFusion sees it, without the metadata tables
/// (`trips$snapshots`, ...) in its table list: they stay queryable by name but
/// do not clutter `\dt` or `information_schema.tables`.
#[derive(Debug)]
struct LakeSchemaProvider {
    inner: Arc<dyn SchemaProvider>,
}

#[async_trait]
impl SchemaProvider for LakeSchemaProvider {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn table_names(&self) -> Vec<String> {
        self.inner
            .table_names()
            .into_iter()
            .filter(|name| !name.contains('$'))
            .collect()
    }

    async fn table(
        &self,
        name: &str,
    ) -> datafusion::error::Result<Option<Arc<dyn datafusion::catalog::TableProvider>>> {
        let table = self.inner.table(name).await?;
        if name.contains('$') {
            // iceberg-datafusion 0.10's metadata scans ignore the projection
            // they are given, which breaks every query that does not select all
            // columns (`count(*)` included); project on top of a full scan.
            return Ok(table.map(|inner| {
                Arc::new(ProjectingTable { inner }) as Arc<dyn datafusion::catalog::TableProvider>
            }));
        }
        Ok(table)
    }

    fn register_table(
        &self,
        name: String,
        table: Arc<dyn datafusion::catalog::TableProvider>,
    ) -> datafusion::error::Result<Option<Arc<dyn datafusion::catalog::TableProvider>>> {
        blocking(|| self.inner.register_table(name, table))
    }

    fn deregister_table(
        &self,
        name: &str,
    ) -> datafusion::error::Result<Option<Arc<dyn datafusion::catalog::TableProvider>>> {
        blocking(|| self.inner.deregister_table(name))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.inner.table_exist(name)
    }
}

/// Runs `f`, which blocks this thread until a catalog call finishes, telling
/// the runtime first: iceberg-datafusion's `register_table` and
/// `deregister_table` (DataFusion's API for them is synchronous) wait with
/// `futures::executor::block_on` for a task that needs the runtime's I/O
/// driver. If the waiting worker was the one to drive it, a catalog that
/// talks over the network (Glue, S3 Tables, REST, a PostgreSQL SQL catalog)
/// never gets its reply — a deadlock `block_in_place` avoids by handing the
/// worker's duties to another thread.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// A table whose own scan ignores projections, projected after the scan.
#[derive(Debug)]
struct ProjectingTable {
    inner: Arc<dyn datafusion::catalog::TableProvider>,
}

#[async_trait]
impl datafusion::catalog::TableProvider for ProjectingTable {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema(&self) -> arrow::datatypes::SchemaRef {
        self.inner.schema()
    }

    fn table_type(&self) -> datafusion::datasource::TableType {
        self.inner.table_type()
    }

    async fn scan(
        &self,
        state: &dyn datafusion::catalog::Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn datafusion::physical_plan::ExecutionPlan>> {
        let full = self.inner.scan(state, None, filters, limit).await?;
        let Some(projection) = projection else {
            return Ok(full);
        };
        let schema = full.schema();
        let exprs = projection
            .iter()
            .map(|&i| {
                let field = schema.field(i);
                let column: Arc<dyn datafusion::physical_plan::PhysicalExpr> = Arc::new(
                    datafusion::physical_expr::expressions::Column::new(field.name(), i),
                );
                (column, field.name().clone())
            })
            .collect::<Vec<_>>();
        Ok(Arc::new(
            datafusion::physical_plan::projection::ProjectionExec::try_new(exprs, full)?,
        ))
    }
}
