// edgelm eval: placeholder until the owning change lands.
#include "subcommands.h"

namespace edgelm::cli {

// TODO(owner): register the eval subcommand.
void register_eval(CLI::App& app) {}

}  // namespace edgelm::cli
