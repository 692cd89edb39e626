// A run in a Docker container: the run folder and the Python helpers mounted, the same command and environment as a
// local run, a thread that copies the container's log stream into the run's output pipes and waits for its exit
// code; and removing the container at the end.
#include <unistd.h>

#include <cctype>
#include <chrono>

#include "amlc/core/util.hpp"
#include "amlc/runs/execution_impl.hpp"
#include "amlc/runs/store.hpp"

namespace amlc::runs {

void Execution::Impl::launch_docker(Fd out, Fd err) {
  dc = std::make_unique<docker::Client>();
  docker::ContainerSpec spec;
  spec.image = image;
  spec.cmd = argv;
  spec.env = env;
  spec.env["HOME"] = "/tmp";
  spec.working_dir = std::string(kContainerRunDir) + "/wd";
  spec.user = std::to_string(::getuid()) + ":" + std::to_string(::getgid());
  spec.labels = {{"amlc.managed", "true"}, {"amlc.run", run_id}};
  spec.mounts.push_back({dir.string(), kContainerRunDir, false, "bind"});
  spec.mounts.push_back({helpers.string(), kContainerPythonDir, true, "bind"});
  spec.name = "amlc-run-" + to_lower(run_id);
  if (spec.name.size() > 120) spec.name = "amlc-run-" + random_hex(8);
  for (char& c : spec.name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') c = '-';
  container_id = dc->create_container(spec).id;
  rec = update_run(dir, [&](json& r) {
    if (r.value("status", "") != kPreparing) {
      r["supervisor"] = rec["supervisor"];
      r["statusHistory"].push_back(preparing_entry);
      r["status"] = kPreparing;
    }
    r["containerId"] = container_id;
    return false;
  });
  dc->start_container(container_id);
  started = monotonic_seconds();
  rec = update_run(dir, [&](json& r) {
    set_status(r, kRunning);
    return true;
  });
  Impl* self = this;
  waiter = std::thread([self, wout = std::move(out), werr = std::move(err)]() mutable {
    std::string error;
    try {
      docker::LogOptions lo;
      lo.follow = true;
      self->dc->container_logs(self->container_id, lo, [&](docker::LogStream s, std::string_view data) {
        write_all_fd(s == docker::LogStream::Stderr ? werr.get() : wout.get(), data.data(), data.size());
      });
      self->container_exit = self->dc->wait_container(self->container_id);
    } catch (const std::exception& e) {
      error = e.what();
      try {
        auto code = self->dc->wait_container_for(self->container_id, std::chrono::milliseconds(2000));
        if (code) self->container_exit = *code;
      } catch (const std::exception&) {
      }
    }
    {
      std::lock_guard<std::mutex> lock(self->mu);
      self->container_error = error;
    }
    wout.reset();  // the reader sees the end of both pipes once container_done is set
    werr.reset();
    self->container_done = true;
  });
}

bool Execution::Impl::poll_docker() {
  if (!container_done) return false;
  // Drain what the log thread wrote before it closed its ends.
  pump(true);
  pump(false);
  if (waiter.joinable()) waiter.join();
  long long code = container_exit;
  std::string err;
  {
    std::lock_guard<std::mutex> lock(mu);
    err = container_error;
  }
  try {
    dc->remove_container(container_id, {.force = true, .volumes = true, .missing_ok = true});
  } catch (const std::exception&) {
  }
  if (code < 0) {
    finalize(std::nullopt, 0, err.empty() ? "the container ended without an exit code" : "docker: " + err);
  } else {
    int c = static_cast<int>(code);
    int sig = (c > 128 && c < 160 && cancel_requested) ? c - 128 : 0;
    finalize(c, sig, "");
  }
  return true;
}

}  // namespace amlc::runs
