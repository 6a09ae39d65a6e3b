//! Binding the router to a socket, and clean shutdown.

use std::future::Future;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::config::ServerConfig;
use crate::state::AppState;

/// Runs the server until `shutdown` completes, then lets in-flight requests finish and flushes the store.
pub async fn run(
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // Polled once now so the signal handlers are installed before anyone is told we listen:
    // a SIGTERM right after the "listening" line must shut down cleanly, not kill the process.
    let mut shutdown = Box::pin(shutdown);
    let signalled =
        std::future::poll_fn(|cx| std::task::Poll::Ready(shutdown.as_mut().poll(cx).is_ready()))
            .await;
    let shutdown = async move {
        if !signalled {
            shutdown.await;
        }
    };
    let listen = config.listen;
    let data_dir = config.data_dir.clone();
    let state = AppState::open(config).await?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let local = listener.local_addr()?;
    let containers = crate::routes::tasks_containers::start(&state, local);
    tracing::info!(data_dir = %data_dir.display(), "stepyard listening on http://{local}");
    axum::serve(
        listener,
        crate::app(state.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .context("server error")?;
    containers.stop().await;
    tracing::info!("shutting down: flushing the store");
    state.close().await.context("flushing the store")?;
    tracing::info!("stopped");
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}
