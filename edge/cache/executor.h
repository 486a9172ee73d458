#pragma once
// Executor: where a piece of work runs. The cache layer never sees Asio; the
// server hands it an executor for its event loop and one for the blocking
// pool, and every asynchronous step completes through them.

#include <functional>

namespace tern::edge::cache {

using Task = std::function<void()>;
using Executor = std::function<void(Task)>;

}  // namespace tern::edge::cache
