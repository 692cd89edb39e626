#include "amlc/docker/http.hpp"

#include "amlc/docker/errors.hpp"

namespace amlc::docker::http {

Response perform(const Endpoint& endpoint, std::chrono::milliseconds connect_timeout, const Request& req,
                 bool allow_timeout) {
  net::Request r = req;
  if (endpoint.scheme == Endpoint::Scheme::Unix) {
    r.url = "http://localhost" + req.target;
    r.unix_socket = endpoint.socket_path;
  } else {
    r.url = "http://" + endpoint.host + ":" + std::to_string(endpoint.port) + req.target;
  }
  r.connect_timeout = connect_timeout;
  Response resp = net::perform(r);
  const std::string call = req.method + " " + req.target;
  switch (resp.outcome) {
    case net::Outcome::Answered:
      return resp;
    case net::Outcome::Stopped:
      throw DockerError(ErrorKind::Interrupted, DockerErrc::Interrupted, "interrupted");
    case net::Outcome::TimedOut:
      if (allow_timeout) return resp;
      throw DockerError(ErrorKind::General, DockerErrc::Timeout,
                        "the Docker engine at " + endpoint.text() + " did not answer " + call + " within " +
                            std::to_string(req.timeout.count() / 1000) + " s",
                        {}, resp.detail);
    case net::Outcome::NoConnection:
      throw connect_error(endpoint, resp.curl_code, resp.os_errno, resp.detail);
    case net::Outcome::TooLarge:
      throw DockerError(ErrorKind::General, DockerErrc::Protocol,
                        "the Docker engine at " + endpoint.text() + " sent more than " +
                            std::to_string(req.max_body >> 20) + " MiB in answer to " + call);
    case net::Outcome::Failed:
      break;
  }
  throw DockerError(ErrorKind::General, DockerErrc::Protocol,
                    "the connection to the Docker engine at " + endpoint.text() + " failed during " + call + ": " +
                        resp.error,
                    {}, resp.detail);
}

}  // namespace amlc::docker::http
