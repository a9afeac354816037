//! Authentication for the PostgreSQL front end: trust, MD5 or SCRAM-SHA-256
//! against the users in the configuration, and the TLS-required check.
//!
//! pgwire keeps per-handshake state inside its startup handlers, so
//! [`Authenticator::startup_handler`] builds a fresh one for every connection.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures::Sink;
use pgwire::api::auth::md5pass::{Md5PasswordAuthStartupHandler, hash_md5_password};
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::sasl::scram::{ScramAuth, gen_salted_password};
use pgwire::api::auth::{
    AuthSource, DefaultServerParameterProvider, LoginInfo, Password, StartupHandler,
    finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata,
};
use pgwire::api::{
    ClientInfo, ConnectionHandle, ConnectionManager, PidSecretKeyGenerator,
    RandomPidSecretKeyGenerator,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use crate::config::AuthMethod;

/// SCRAM's iteration count: PostgreSQL's default.
const SCRAM_ITERATIONS: usize = 4096;

/// Everything needed to build a connection's startup handler.
#[derive(Debug)]
pub(super) struct Authenticator {
    method: AuthMethod,
    source: Arc<Users>,
    parameters: Arc<DefaultServerParameterProvider>,
    connections: Arc<ConnectionManager>,
    /// Shared by every connection so that process ids are unique: cancel
    /// requests find their connection by (pid, secret key).
    pids: Arc<RandomPidSecretKeyGenerator>,
    tls_required: bool,
}

impl Authenticator {
    /// `users` maps user names to cleartext passwords; empty means trust.
    pub(super) fn new(
        method: AuthMethod,
        users: HashMap<String, String>,
        connections: Arc<ConnectionManager>,
        tls_required: bool,
    ) -> Self {
        let method = if users.is_empty() {
            AuthMethod::Trust
        } else {
            method
        };
        let mut parameters = DefaultServerParameterProvider::default();
        parameters.server_version = format!("16.6 (Floe {})", env!("CARGO_PKG_VERSION"));
        parameters.date_style = "ISO, MDY".to_owned();
        Authenticator {
            method,
            source: Arc::new(Users::new(method, users)),
            parameters: Arc::new(parameters),
            connections,
            pids: Arc::new(RandomPidSecretKeyGenerator::default()),
            tls_required,
        }
    }

    /// A fresh startup handler for one connection.
    pub(super) fn startup_handler(&self) -> Startup {
        let inner = match self.method {
            AuthMethod::Trust => Method::Trust(Trust {
                parameters: Arc::clone(&self.parameters),
                connections: Arc::clone(&self.connections),
                pids: Arc::clone(&self.pids),
            }),
            AuthMethod::Md5 => Method::Md5(
                Md5PasswordAuthStartupHandler::new(
                    Arc::clone(&self.source),
                    Arc::clone(&self.parameters),
                )
                .with_pid_secret_key_generator(
                    Arc::clone(&self.pids) as Arc<dyn PidSecretKeyGenerator>
                )
                .with_connection_manager(Arc::clone(&self.connections)),
            ),
            AuthMethod::ScramSha256 => {
                let mut scram = ScramAuth::new(Arc::clone(&self.source) as Arc<dyn AuthSource>);
                scram.set_iterations(SCRAM_ITERATIONS);
                Method::Scram(
                    SASLAuthStartupHandler::new(Arc::clone(&self.parameters))
                        .with_scram(scram)
                        .with_pid_secret_key_generator(
                            Arc::clone(&self.pids) as Arc<dyn PidSecretKeyGenerator>
                        )
                        .with_connection_manager(Arc::clone(&self.connections)),
                )
            }
        };
        Startup {
            inner,
            tls_required: self.tls_required,
        }
    }
}

/// The configured users' secrets, in the form each method checks against.
#[derive(Debug)]
struct Users {
    method: AuthMethod,
    cleartext: HashMap<String, String>,
    /// SCRAM's salted passwords, computed once at start: PBKDF2 is slow on purpose.
    scram: HashMap<String, (Vec<u8>, Vec<u8>)>,
}

impl Users {
    fn new(method: AuthMethod, cleartext: HashMap<String, String>) -> Self {
        let scram = if method == AuthMethod::ScramSha256 {
            cleartext
                .iter()
                .map(|(user, password)| {
                    let salt: [u8; 16] = rand::random();
                    let salted = gen_salted_password(password, &salt, SCRAM_ITERATIONS);
                    (user.clone(), (salt.to_vec(), salted))
                })
                .collect()
        } else {
            HashMap::new()
        };
        Users {
            method,
            cleartext,
            scram,
        }
    }
}

#[async_trait]
impl AuthSource for Users {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let user = login.user().ok_or(PgWireError::UserNameRequired)?;
        // An unknown user fails exactly like a wrong password, as in PostgreSQL,
        // so that user names cannot be probed.
        let failed = || PgWireError::InvalidPassword(user.to_owned());
        match self.method {
            AuthMethod::Md5 => {
                let password = self.cleartext.get(user).ok_or_else(failed)?;
                let salt: [u8; 4] = rand::random();
                let hashed = hash_md5_password(user, password, &salt);
                Ok(Password::new(Some(salt.to_vec()), hashed.into_bytes()))
            }
            AuthMethod::ScramSha256 => {
                let (salt, salted) = self.scram.get(user).ok_or_else(failed)?;
                Ok(Password::new(Some(salt.clone()), salted.clone()))
            }
            AuthMethod::Trust => Err(failed()),
        }
    }
}

/// Trust: no password; like pgwire's no-op handler, but with Floe's server
/// parameters and registered for cancel requests.
pub(super) struct Trust {
    parameters: Arc<DefaultServerParameterProvider>,
    connections: Arc<ConnectionManager>,
    pids: Arc<RandomPidSecretKeyGenerator>,
}

impl Trust {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let PgWireFrontendMessage::Startup(startup) = &message {
            protocol_negotiation(client, startup).await?;
            save_startup_parameters_to_metadata(client, startup);
            let (pid, secret_key) = self.pids.generate(client);
            client.set_pid_and_secret_key(pid, secret_key.clone());
            let (handle, guard) = self.connections.register(pid, secret_key);
            client
                .session_extensions()
                .insert::<Arc<ConnectionHandle>>(handle);
            client.session_extensions().insert(guard);
            finish_authentication(client, self.parameters.as_ref()).await?;
        }
        Ok(())
    }
}

enum Method {
    Trust(Trust),
    Md5(Md5PasswordAuthStartupHandler<Users, DefaultServerParameterProvider>),
    Scram(SASLAuthStartupHandler<DefaultServerParameterProvider>),
}

/// One connection's startup handler.
pub(super) struct Startup {
    inner: Method,
    tls_required: bool,
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if self.tls_required
            && !client.is_secure()
            && matches!(message, PgWireFrontendMessage::Startup(_))
        {
            return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                "FATAL".to_owned(),
                "28000".to_owned(),
                "this server requires SSL: connect with sslmode=require".to_owned(),
            ))));
        }
        match &self.inner {
            Method::Trust(h) => h.on_startup(client, message).await,
            Method::Md5(h) => h.on_startup(client, message).await,
            Method::Scram(h) => h.on_startup(client, message).await,
        }
    }
}
