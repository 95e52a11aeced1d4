// edgelm delta: placeholder until the owning change lands.
#include "subcommands.h"

namespace edgelm::cli {

// TODO(owner): register the delta subcommand.
void register_delta(CLI::App& app) {}

}  // namespace edgelm::cli
