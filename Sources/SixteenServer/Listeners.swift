import Reactor

/// A listening socket handed to the daemon at start-up, by systemd's socket
/// activation or by the process it upgrades: its descriptor, and its name
/// (`FileDescriptorName=`): a protocol's name, `admin`, or anything else for
/// the first service.
public struct InheritedListener: Sendable, Equatable {
    public let fd: Int32
    public let name: String

    public init(fd: Int32, name: String) {
        self.fd = fd
        self.name = name
    }
}

/// The listeners of every service, taken or bound.
struct Listeners {
    var services: [Server.BoundService] = []
    var adminFD: Int32 = -1

    /// Inherited sockets first (by name), the rest bound: `reactors`
    /// `SO_REUSEPORT` listeners per service. An inherited socket serves every
    /// reactor of its service (each has its own descriptor of it); it is
    /// never bound again, and never shut down.
    init(_ configuration: ServerConfiguration) throws(ServerError) {
        let names = Set(configuration.services.map(\.served.name))
        var inherited = configuration.inherited
        for listener in inherited where !ServiceManager.isListeningStream(listener.fd) {
            throw .notAListener(name: listener.name)
        }
        if let index = inherited.firstIndex(where: { $0.name == "admin" }) {
            adminFD = inherited.remove(at: index).fd
        }
        let reactors = max(1, configuration.reactors)
        do throws(ServerError) {
            for (position, service) in configuration.services.enumerated() {
                let served = service.served.served(proxied: configuration.proxyProtocol)
                // A socket named for this protocol; the first service also
                // takes sockets named for no service.
                let mine = inherited.filter { $0.name == served.name || (position == 0 && !names.contains($0.name)) }
                inherited.removeAll { listener in mine.contains(listener) }
                if !mine.isEmpty {
                    var fds = mine.map(\.fd)
                    while fds.count < reactors {
                        switch Socket.duplicate(fds[fds.count % mine.count]) {
                        case .success(let copy): fds.append(copy)
                        case .failure(let error): throw ServerError.reactor(ReactorError("cannot share an inherited listener: \(error)"))
                        }
                    }
                    guard let address = SocketAddress.local(of: fds[0]) else { throw ServerError.notAListener(name: mine[0].name) }
                    services.append(Server.BoundService(served: served, address: address, listenerFDs: fds, inherited: true))
                    continue
                }
                let requested = try Self.resolve(configuration.host, service.port)
                let address = requested.withPort(try Self.claimPort(requested))
                var fds: [Int32] = []
                for _ in 0..<reactors {
                    do {
                        fds.append(try Socket.listen(on: address, reusePort: true, backlog: configuration.backlog))
                    } catch {
                        fds.forEach(Socket.close)
                        throw ServerError.cannotListen(address: address.description, error)
                    }
                }
                services.append(Server.BoundService(served: served, address: address, listenerFDs: fds, inherited: false))
            }
            if adminFD < 0, let admin = configuration.admin {
                let requested = try Self.resolve(admin.host, admin.port)
                do {
                    adminFD = try Socket.listen(on: requested, reusePort: false, backlog: 128)
                } catch {
                    throw ServerError.cannotListen(address: requested.description, error)
                }
            }
        } catch {
            services.forEach { $0.listenerFDs.forEach(Socket.close) }
            throw error
        }
    }

    private static func resolve(_ host: String, _ port: Int) throws(ServerError) -> SocketAddress {
        do {
            return try SocketAddress.resolve(host: host, port: port, passive: true)[0]
        } catch {
            throw .unresolvableHost(error)
        }
    }

    /// Binds once without `SO_REUSEPORT` to learn the port (for `-p 0`) and to
    /// find out whether anyone listens there already. Our own listeners all
    /// set `SO_REUSEPORT`, and the kernel would let them share a port with
    /// another process (of the same user) that does too: this probe turns
    /// that silent sharing into "address in use".
    private static func claimPort(_ address: SocketAddress) throws(ServerError) -> Int {
        let probe: Int32
        do {
            probe = try Socket.listen(on: address, reusePort: false, backlog: 1)
        } catch {
            throw .cannotListen(address: address.description, error)
        }
        defer { Socket.close(probe) }
        return SocketAddress.local(of: probe)?.port ?? address.port
    }
}
