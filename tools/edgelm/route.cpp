// edgelm route: placeholder until the owning change lands.
#include "subcommands.h"

namespace edgelm::cli {

// TODO(owner): register the route subcommand.
void register_route(CLI::App& app) {}

}  // namespace edgelm::cli
