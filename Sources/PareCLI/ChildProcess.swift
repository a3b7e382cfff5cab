import Foundation
import Pare

/// Runs this executable again as a watched child: its stderr captured, stopped when it passes a
/// wall-clock or resident-memory limit. Foundation's Process cannot watch a child's memory, and
/// posix_spawn lets the parent keep the pid it polls.
enum ChildProcess {
    enum Ending: Equatable {
        case exited(Int32)
        case signaled(Int32)
        case timedOut
        case overMemory
    }

    struct Outcome {
        var ending: Ending
        var stderr: String
    }

    static func run(_ arguments: [String], timeLimit: Double, memoryLimit: Int) throws -> Outcome {
        var pipe: [Int32] = [0, 0]
        guard Glibc.pipe(&pipe) == 0 else {
            throw PareError(file: "pare", "cannot create a pipe: \(String(cString: strerror(errno)))")
        }
        defer { close(pipe[0]) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, pipe[1], 2)
        posix_spawn_file_actions_addclose(&actions, pipe[0])
        let executable = "/proc/self/exe"
        var environment = ProcessInfo.processInfo.environment
        environment["SWIFT_BACKTRACE"] = "enable=no"  // a crash here is expected, not worth a backtrace
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in argv + envp { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, envp)
        close(pipe[1])
        guard spawned == 0 else {
            throw PareError(file: "pare", "cannot start a child process: \(String(cString: strerror(spawned)))")
        }

        // The child's stderr is drained while it runs: a message longer than the pipe's buffer
        // would otherwise block it until the time limit. Only the first 64 KiB are kept.
        _ = fcntl(pipe[0], F_SETFL, fcntl(pipe[0], F_GETFL) | O_NONBLOCK)
        var captured = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        func drain() {
            while true {
                let n = read(pipe[0], &buffer, buffer.count)
                if n <= 0 { return }
                if captured.count < 1 << 16 { captured += buffer[0..<n] }
            }
        }
        let start = Date()
        var status: Int32 = 0
        var ending: Ending?
        var pause: useconds_t = 2_000
        while true {
            drain()
            let done = waitpid(pid, &status, WNOHANG)
            if done == pid { break }
            if done < 0, errno != EINTR { break }
            if ending == nil {
                if Date().timeIntervalSince(start) > timeLimit {
                    ending = .timedOut
                    kill(pid, SIGKILL)
                } else if residentBytes(of: pid) > memoryLimit {
                    ending = .overMemory
                    kill(pid, SIGKILL)
                }
            }
            usleep(pause)
            pause = min(pause * 2, 20_000)
        }
        drain()
        if ending == nil {
            let signal = status & 0x7F
            ending = signal == 0 ? .exited((status >> 8) & 0xFF) : .signaled(signal)
        }
        return Outcome(ending: ending!, stderr: String(decoding: captured, as: UTF8.self))
    }

    /// Resident set size from /proc/PID/statm (0 when unknown).
    static func residentBytes(of pid: pid_t) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
