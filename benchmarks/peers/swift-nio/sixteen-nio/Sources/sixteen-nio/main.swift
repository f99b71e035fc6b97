// sixteen-nio: a SwiftNIO server for Sixteen's two protocols, `sixteen` and
// `upper` (see the repository's README and the rules atop
// Sources/SixteenProtocol/SixteenSession.swift and UpperSession.swift). It is
// the benchmark peer a Swift user would write instead of Sixteen: idiomatic
// NIO, one channel pipeline per connection, no per-session logging.
//
//   sixteen-nio [--protocol sixteen|upper] [-p PORT] [--threads N]

import Dispatch
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - The `sixteen` protocol

/// One `sixteen` session: read 16 octets (any split), answer
/// `Farewell, client`, shut down our output, then discard input until the
/// client's EOF or the linger timeout, and close. The request deadline
/// covers the whole request, from the moment the connection is active.
final class SixteenHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    static let requestLength = 16
    static let reply = "Farewell, client"
    static let requestTimeout = TimeAmount.seconds(10)
    static let lingerTimeout = TimeAmount.seconds(2)

    private enum State {
        case awaitingRequest(received: Int)
        case sendingReply(peerFinished: Bool)
        case lingering
        case closed
    }

    private var state = State.awaitingRequest(received: 0)
    private var timer: Scheduled<Void>?

    func channelActive(context: ChannelHandlerContext) {
        self.arm(Self.requestTimeout, context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.state = .closed
        self.timer?.cancel()
        self.timer = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Octets after the 16th are read and discarded, never answered.
        guard case .awaitingRequest(let received) = self.state else { return }
        let total = received + self.unwrapInboundIn(data).readableBytes
        guard total >= Self.requestLength else {
            self.state = .awaitingRequest(received: total)
            return
        }
        self.state = .sendingReply(peerFinished: false)
        self.timer?.cancel()
        // The reply must be written within the linger timeout too.
        self.arm(Self.lingerTimeout, context: context)
        let reply = context.channel.allocator.buffer(string: Self.reply)
        context.writeAndFlush(self.wrapOutboundOut(reply)).assumeIsolated().whenComplete { result in
            guard case .sendingReply(let peerFinished) = self.state else { return }
            switch result {
            case .failure:
                self.close(context: context)
            case .success where peerFinished:
                // The client has finished sending: nothing unread, no RST.
                self.close(context: context)
            case .success:
                // Shut down our side (the client sees EOF after the reply) and
                // keep reading until its EOF, so that closing with unread
                // input does not send an RST that could destroy the reply.
                self.state = .lingering
                self.timer?.cancel()
                self.arm(Self.lingerTimeout, context: context)
                context.close(mode: .output, promise: nil)
            }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let event = event as? ChannelEvent, event == .inputClosed else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        switch self.state {
        case .awaitingRequest, .lingering:
            // EOF before 16 octets (short request: no reply), or the client's
            // EOF after our reply: the session is over.
            self.close(context: context)
        case .sendingReply:
            self.state = .sendingReply(peerFinished: true)
        case .closed:
            break
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A reset or any other connection error ends the session.
        self.close(context: context)
    }

    private func arm(_ timeout: TimeAmount, context: ChannelHandlerContext) {
        let channel = context.channel
        self.timer = context.eventLoop.scheduleTask(in: timeout) {
            channel.close(promise: nil)
        }
    }

    private func close(context: ChannelHandlerContext) {
        if case .closed = self.state { return }
        self.state = .closed
        self.timer?.cancel()
        self.timer = nil
        context.close(promise: nil)
    }
}

// MARK: - The `upper` protocol

/// One `upper` session: every octet read goes back ASCII-uppercased, in
/// order; once the client has half-closed and every write has completed, the
/// connection is closed.
///
/// Reading never waits for writing (NIO's default autoRead, no backpressure),
/// so the book's deadlock cannot happen. The price: output the client has not
/// read yet is buffered in memory, without limit. Sixteen instead keeps at
/// most a high-water mark per connection in memory and spills the rest to a
/// file.
final class UpperHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// The most recent write; writes complete in order, so once it has
    /// completed every earlier one has too.
    private var lastWrite: EventLoopFuture<Void>?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = self.unwrapInboundIn(data)
        buffer.withUnsafeMutableReadableBytes { octets in
            for index in octets.indices {
                let octet = octets[index]
                if octet &- UInt8(ascii: "a") < 26 {  // only a-z change
                    octets[index] = octet &- 0x20
                }
            }
        }
        self.lastWrite = context.writeAndFlush(self.wrapOutboundOut(buffer))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let event = event as? ChannelEvent, event == .inputClosed else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        // All input has been read, so closing sends FIN, never RST.
        guard let lastWrite = self.lastWrite else {
            context.close(promise: nil)
            return
        }
        lastWrite.assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

// MARK: - Command line

enum Protocol: String {
    case sixteen
    case upper
}

struct Options {
    var proto = Protocol.sixteen
    var port = 1060
    var threads = System.coreCount
}

func usageError(_ message: String) -> Never {
    FileDescriptorOutput.standardError.emit(
        "sixteen-nio: \(message)\n"
            + "usage: sixteen-nio [--protocol sixteen|upper] [-p PORT] [--threads N]\n"
    )
    exit(2)
}

func parseOptions(_ arguments: [String]) -> Options {
    var options = Options()
    var rest = arguments.dropFirst()
    while let argument = rest.popFirst() {
        func value() -> String {
            guard let value = rest.popFirst() else { usageError("\(argument) needs a value") }
            return value
        }
        switch argument {
        case "--protocol":
            let name = value()
            guard let proto = Protocol(rawValue: name) else {
                usageError("unknown protocol '\(name)' (sixteen or upper)")
            }
            options.proto = proto
        case "-p", "--port":
            let text = value()
            guard let port = Int(text), (0...65535).contains(port) else {
                usageError("bad port '\(text)'")
            }
            options.port = port
        case "--threads":
            let text = value()
            guard let threads = Int(text), threads > 0 else { usageError("bad thread count '\(text)'") }
            options.threads = threads
        case "-h", "--help":
            print("usage: sixteen-nio [--protocol sixteen|upper] [-p PORT] [--threads N]")
            exit(0)
        default:
            usageError("unknown argument '\(argument)'")
        }
    }
    return options
}

/// Unbuffered writes to a descriptor (stderr needs no `FILE` buffering).
struct FileDescriptorOutput {
    static let standardError = FileDescriptorOutput(fd: 2)
    let fd: Int32

    func emit(_ text: String) {
        var text = text
        text.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let n = write(self.fd, bytes.baseAddress! + offset, bytes.count - offset)
                if n <= 0 { return }
                offset += n
            }
        }
    }
}

/// SIGTERM and SIGINT end the process at once, with status 0; sessions in
/// flight are dropped. (A global function, so that the handlers are not
/// isolated to the main actor as closures in top-level code would be: they
/// run on a Dispatch worker thread.)
func installSignalHandlers() -> [any DispatchSourceSignal] {
    signal(SIGPIPE, SIG_IGN)
    return [SIGTERM, SIGINT].map { signalNumber in
        signal(signalNumber, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
        source.setEventHandler { exit(0) }
        source.resume()
        return source
    }
}

// MARK: - Main

let options = parseOptions(CommandLine.arguments)

let signalSources = installSignalHandlers()

let group = MultiThreadedEventLoopGroup(numberOfThreads: options.threads)
let proto = options.proto
let bootstrap = ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 4096)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.allowRemoteHalfClosure, value: true)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            switch proto {
            case .sixteen:
                try channel.pipeline.syncOperations.addHandler(SixteenHandler())
            case .upper:
                try channel.pipeline.syncOperations.addHandler(UpperHandler())
            }
        }
    }

let serverChannel: any Channel
do {
    serverChannel = try bootstrap.bind(host: "127.0.0.1", port: options.port).wait()
} catch {
    FileDescriptorOutput.standardError.emit("sixteen-nio: cannot listen on 127.0.0.1:\(options.port): \(error)\n")
    exit(1)
}

let boundPort = serverChannel.localAddress?.port ?? options.port
print("Listening at ('127.0.0.1', \(boundPort))")
fflush(nil)  // stdout is block-buffered on a pipe

try serverChannel.closeFuture.wait()
withExtendedLifetime(signalSources) {}
