// A trial's exit wakes the scheduler at once instead of at its next poll tick: while a ChildWakeup exists, SIGCHLD
// writes a byte to a pipe (made once per process, close-on-exec, non-blocking) whose read end the scheduler polls
// together with the trials' output. The destructor puts the previous SIGCHLD action back.
#pragma once

#include <signal.h>

namespace amlc::sweep {

class ChildWakeup {
 public:
  ChildWakeup();
  ~ChildWakeup();
  ChildWakeup(const ChildWakeup&) = delete;
  ChildWakeup& operator=(const ChildWakeup&) = delete;

  int fd() const;      // to poll for POLLIN; -1 when the pipe could not be made (then poll with a short timeout)
  void drain() const;  // reads what is pending

 private:
  struct sigaction old_ {};
  bool installed_ = false;
};

}  // namespace amlc::sweep
