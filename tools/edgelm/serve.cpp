// edgelm serve: placeholder until the owning change lands.
#include "subcommands.h"

namespace edgelm::cli {

// TODO(owner): register the serve subcommand.
void register_serve(CLI::App& app) {}

}  // namespace edgelm::cli
