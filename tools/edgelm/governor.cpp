// edgelm governor: placeholder until the owning change lands.
#include "subcommands.h"

namespace edgelm::cli {

// TODO(owner): register the governor subcommand.
void register_governor(CLI::App& app) {}

}  // namespace edgelm::cli
