/* routes.c — every table of HTTP endpoints. A file that adds endpoints defines its table and
 * adds one line here. */
#include "api.h"
#include "http.h"

const struct http_route *const http_route_tables[] = {
    api_health_routes,  /* /healthz /readyz /metrics /api/v1/status */
    api_frames_routes,  /* /api/v1/frames... */
    api_page_routes,    /* / (the review page), /api/v1/openapi.yaml */
    api_alerts_routes,  /* /api/v1/alerts... */
    api_events_routes,  /* /api/v1/events (SSE) */
    api_models_routes,  /* /api/v1/models, /api/v1/train, /api/v1/score */
    api_export_routes,  /* /api/v1/export */
    api_results_routes, /* /api/v1/results..., /api/v1/parts */
    api_recipes_routes, /* /api/v1/recipes, /api/v1/cameras/{name}/recipe */
    NULL,
};
