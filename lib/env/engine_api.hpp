#pragma once
// Docker Engine's API on its local socket, for the two questions a submit
// and a cache hit ask ("does the engine answer?", "is this image here?"):
// one request on a unix socket takes about a millisecond where the docker
// client takes 20-40 (it is a Go program that starts, reads its config and
// connects). Anything this does not cover — another DOCKER_HOST, a docker
// context, podman, an answer it does not expect — returns nothing, and the
// caller asks the runtime's client as before.
#include <optional>
#include <string>

namespace amlrun::env {

// The HTTP status of GET `path` from the local Docker Engine, or nothing
// when it cannot be asked this way (see above).
std::optional<int> docker_engine_status(const std::string& path);

}  // namespace amlrun::env
