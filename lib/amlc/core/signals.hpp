// Interruption: main() installs handlers for SIGINT/SIGTERM that only set a flag; long operations
// poll it (or wait on it) and unwind with an Interrupted error (exit 130).
#pragma once

namespace amlc {

void install_interrupt_handlers();
bool interrupted();           // a SIGINT or SIGTERM arrived
int interrupt_signal();       // which one (0 if none)
void throw_if_interrupted();  // throws Error(Interrupted)
void reset_interrupted();     // for tests

}  // namespace amlc
