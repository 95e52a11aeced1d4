// edgelm audit: placeholder until the owning change lands.
#include "subcommands.h"

namespace edgelm::cli {

// TODO(owner): register the audit subcommand.
void register_audit(CLI::App& app) {}

}  // namespace edgelm::cli
