#include "proxy/media_services.h"

namespace pinhole::proxy {

MediaMetrics::MediaMetrics(MetricsRegistry& registry)
    : offers(registry.counter("pinhole_media_offers_total", "SDP offers rewritten by the media relay")),
      answers(registry.counter("pinhole_media_answers_total", "SDP answers rewritten by the media relay")),
      deletes(registry.counter("pinhole_media_deletes_total", "Media sessions deleted (BYE, CANCEL, failed branch)")),
      not_relayed(registry.counter("pinhole_media_not_relayed_total",
                                   "Offers left direct by relay: auto (both ends behind one public address)")),
      relay_failures(
          registry.counter("pinhole_media_relay_failures_total", "Media relay requests that failed or timed out")) {}

}  // namespace pinhole::proxy
