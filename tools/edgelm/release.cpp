// edgelm keygen / release: placeholder until the owning change lands.
#include "subcommands.h"

namespace edgelm::cli {

// TODO(owner): register the keygen subcommand.
void register_keygen(CLI::App& app) {}
// TODO(owner): register the release subcommand.
void register_release(CLI::App& app) {}

}  // namespace edgelm::cli
