//! Keeps each table's manifests parsed between queries.
//!
//! iceberg-datafusion's catalog provider loads the table afresh for every
//! scan, and every load makes a new `Table` with an empty object cache, so
//! every query read and parsed the manifest list and every manifest again —
//! on a table of many manifests, most of a selective query's time.
//! [`CachingCatalog`] wraps the catalog the embedded engine reads through: a
//! load whose metadata location is the one already seen returns the `Table`
//! from before, whose object cache (shared by its clones) holds what earlier
//! scans parsed. A commit changes the location, so a changed table is never
//! served stale.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use iceberg::table::Table;
use iceberg::{Catalog, Namespace, NamespaceIdent, Result, TableCommit, TableCreation, TableIdent};

/// Tables remembered at most; the map is cleared when it fills (a reload
/// costs one manifest read per table, nothing else).
const MAX_TABLES: usize = 1024;

/// A catalog whose `load_table` reuses the previous `Table` of an unchanged
/// table.
#[derive(Debug)]
pub(crate) struct CachingCatalog {
    inner: Arc<dyn Catalog>,
    tables: Mutex<HashMap<TableIdent, Table>>,
}

impl CachingCatalog {
    pub(crate) fn new(inner: Arc<dyn Catalog>) -> CachingCatalog {
        CachingCatalog {
            inner,
            tables: Mutex::new(HashMap::new()),
        }
    }

    fn forget(&self, table: &TableIdent) {
        if let Ok(mut tables) = self.tables.lock() {
            tables.remove(table);
        }
    }
}

#[async_trait]
impl Catalog for CachingCatalog {
    async fn list_namespaces(
        &self,
        parent: Option<&NamespaceIdent>,
    ) -> Result<Vec<NamespaceIdent>> {
        self.inner.list_namespaces(parent).await
    }

    async fn create_namespace(
        &self,
        namespace: &NamespaceIdent,
        properties: HashMap<String, String>,
    ) -> Result<Namespace> {
        self.inner.create_namespace(namespace, properties).await
    }

    async fn get_namespace(&self, namespace: &NamespaceIdent) -> Result<Namespace> {
        self.inner.get_namespace(namespace).await
    }

    async fn namespace_exists(&self, namespace: &NamespaceIdent) -> Result<bool> {
        self.inner.namespace_exists(namespace).await
    }

    async fn update_namespace(
        &self,
        namespace: &NamespaceIdent,
        properties: HashMap<String, String>,
    ) -> Result<()> {
        self.inner.update_namespace(namespace, properties).await
    }

    async fn drop_namespace(&self, namespace: &NamespaceIdent) -> Result<()> {
        self.inner.drop_namespace(namespace).await
    }

    async fn list_tables(&self, namespace: &NamespaceIdent) -> Result<Vec<TableIdent>> {
        self.inner.list_tables(namespace).await
    }

    async fn create_table(
        &self,
        namespace: &NamespaceIdent,
        creation: TableCreation,
    ) -> Result<Table> {
        self.inner.create_table(namespace, creation).await
    }

    async fn load_table(&self, ident: &TableIdent) -> Result<Table> {
        // The load reads the current metadata (that is how a commit is
        // noticed); what it saves is the manifests.
        let fresh = self.inner.load_table(ident).await?;
        let Ok(mut tables) = self.tables.lock() else {
            return Ok(fresh);
        };
        if let Some(known) = tables.get(ident)
            && known.metadata_location().is_some()
            && known.metadata_location() == fresh.metadata_location()
        {
            return Ok(known.clone());
        }
        if tables.len() >= MAX_TABLES {
            tables.clear();
        }
        tables.insert(ident.clone(), fresh.clone());
        Ok(fresh)
    }

    async fn drop_table(&self, table: &TableIdent) -> Result<()> {
        self.forget(table);
        self.inner.drop_table(table).await
    }

    async fn purge_table(&self, table: &TableIdent) -> Result<()> {
        self.forget(table);
        self.inner.purge_table(table).await
    }

    async fn table_exists(&self, table: &TableIdent) -> Result<bool> {
        self.inner.table_exists(table).await
    }

    async fn rename_table(&self, src: &TableIdent, dest: &TableIdent) -> Result<()> {
        self.forget(src);
        self.forget(dest);
        self.inner.rename_table(src, dest).await
    }

    async fn register_table(&self, table: &TableIdent, metadata_location: String) -> Result<Table> {
        self.forget(table);
        self.inner.register_table(table, metadata_location).await
    }

    async fn update_table(&self, commit: TableCommit) -> Result<Table> {
        self.inner.update_table(commit).await
    }
}
