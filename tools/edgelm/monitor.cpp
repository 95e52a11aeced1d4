// edgelm monitor: placeholder until the owning change lands.
#include "subcommands.h"

namespace edgelm::cli {

// TODO(owner): register the monitor subcommand.
void register_monitor(CLI::App& app) {}

}  // namespace edgelm::cli
