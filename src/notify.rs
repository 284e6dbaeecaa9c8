//! systemd readiness notification (`Type=notify`): sends `READY=1` once the store is open and
//! the port is bound, and `STOPPING=1` when shutdown begins, to the datagram socket named by
//! `$NOTIFY_SOCKET`. Does nothing when not started by systemd.

use std::os::unix::net::UnixDatagram;

/// Sends one notification message; failures are logged, never fatal.
pub fn notify(message: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let result = UnixDatagram::unbound().and_then(|socket| {
        let bytes = path.as_encoded_bytes();
        if let Some(name) = bytes.strip_prefix(b"@") {
            #[cfg(target_os = "linux")]
            {
                use std::os::linux::net::SocketAddrExt;
                let address = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                return socket
                    .send_to_addr(message.as_bytes(), &address)
                    .map(|_| ());
            }
            #[cfg(not(target_os = "linux"))]
            {
                let _ = name;
                return Err(std::io::Error::other("abstract sockets need Linux"));
            }
        }
        socket.send_to(message.as_bytes(), &path).map(|_| ())
    });
    if let Err(error) = result {
        tracing::warn!(%error, "could not notify systemd");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_to_the_socket_in_notify_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let listener = UnixDatagram::bind(&path).unwrap();
        // The variable is process-wide; this is the only test that sets it.
        std::env::set_var("NOTIFY_SOCKET", &path);
        notify("READY=1");
        std::env::remove_var("NOTIFY_SOCKET");
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
    }
}
