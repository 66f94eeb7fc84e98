/*
 * nbody: gravitational n-body simulation in double precision.
 *
 * Hot loop: the O(n^2) pairwise force loop -- f64 subtraction,
 * multiplication, a square root and a division per pair, and
 * read-modify-write of velocity components -- followed by a position
 * update, all integrated with a kick-drift-kick leapfrog scheme. The system
 * is a heavy central body with 15 lighter bodies on roughly circular,
 * slightly inclined orbits generated from the PRNG; forces are softened so
 * close encounters stay tame. Total energy is printed at the start and at
 * the end and its drift is checked.
 *
 * Scale: number of 100-step blocks (one block ~ 1.5 million wasm instructions).
 */
#include "common.h"
#include <math.h>
#include <string.h>

#define NB 16
#define STEPS_PER_UNIT 100
#define DEFAULT_SCALE 128
#define MAX_SCALE 1000000

static const double G = 1.0;
static const double SOFT2 = 0.01; /* softening length squared */
static const double DT = 0.001;

typedef struct {
    double x, y, z, vx, vy, vz, m;
} body;

static body bodies[NB];

static void init_system(void) {
    rng_seed(0xB0D1E5u);
    bodies[0] = (body){0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1000.0};
    for (int i = 1; i < NB; i++) {
        body *b = &bodies[i];
        double r = 2.0 + 10.0 * rng_unit();
        double ang = 6.283185307179586 * rng_unit();
        /* cos/sin via a rotation so only sqrt is needed from libm */
        double c = 1.0, s = 0.0, dc, ds;
        int turns = (int)(ang * 64.0);
        dc = 0.9998795456205172;  /* cos(1/64) */
        ds = 0.015624364233151364; /* sin(1/64) */
        for (int t = 0; t < turns; t++) {
            double nc = c * dc - s * ds;
            s = s * dc + c * ds;
            c = nc;
        }
        double incl = 0.05 * (rng_unit() - 0.5);
        b->x = r * c;
        b->y = r * s;
        b->z = r * incl;
        double v = sqrt(G * bodies[0].m / r) * (0.9 + 0.2 * rng_unit());
        b->vx = -v * s;
        b->vy = v * c;
        b->vz = 0.0;
        b->m = 0.01 + 0.02 * rng_unit();
    }
    /* Move to the centre-of-momentum frame. */
    double px = 0.0, py = 0.0, pz = 0.0;
    for (int i = 0; i < NB; i++) {
        px = px + bodies[i].m * bodies[i].vx;
        py = py + bodies[i].m * bodies[i].vy;
        pz = pz + bodies[i].m * bodies[i].vz;
    }
    bodies[0].vx = bodies[0].vx - px / bodies[0].m;
    bodies[0].vy = bodies[0].vy - py / bodies[0].m;
    bodies[0].vz = bodies[0].vz - pz / bodies[0].m;
}

static double energy(void) {
    double e = 0.0;
    for (int i = 0; i < NB; i++) {
        body *a = &bodies[i];
        e = e + 0.5 * a->m * (a->vx * a->vx + a->vy * a->vy + a->vz * a->vz);
        for (int j = i + 1; j < NB; j++) {
            body *b = &bodies[j];
            double dx = a->x - b->x, dy = a->y - b->y, dz = a->z - b->z;
            e = e - G * a->m * b->m / sqrt(dx * dx + dy * dy + dz * dz + SOFT2);
        }
    }
    return e;
}

/* v += dt * acceleration */
static void kick(double dt) {
    for (int i = 0; i < NB; i++) {
        body *a = &bodies[i];
        for (int j = i + 1; j < NB; j++) {
            body *b = &bodies[j];
            double dx = a->x - b->x, dy = a->y - b->y, dz = a->z - b->z;
            double d2 = dx * dx + dy * dy + dz * dz + SOFT2;
            double mag = G * dt / (d2 * sqrt(d2));
            double ma = a->m * mag, mb = b->m * mag;
            a->vx = a->vx - dx * mb;
            a->vy = a->vy - dy * mb;
            a->vz = a->vz - dz * mb;
            b->vx = b->vx + dx * ma;
            b->vy = b->vy + dy * ma;
            b->vz = b->vz + dz * ma;
        }
    }
}

static void drift(double dt) {
    for (int i = 0; i < NB; i++) {
        bodies[i].x = bodies[i].x + dt * bodies[i].vx;
        bodies[i].y = bodies[i].y + dt * bodies[i].vy;
        bodies[i].z = bodies[i].z + dt * bodies[i].vz;
    }
}

static uint64_t bits_of(double x) {
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

int main(int argc, char **argv) {
    int32_t scale = parse_scale(argc, argv, DEFAULT_SCALE, MAX_SCALE);
    if (scale == 0)
        return 2;

    init_system();
    double e0 = energy();
    printf("bodies: %d, steps: %d, dt: %.3f\n", NB, (int)scale * STEPS_PER_UNIT, DT);
    printf("energy before: %.9f\n", e0);

    /* Leapfrog: half kick, then (drift, full kick) per step, half kick back. */
    kick(0.5 * DT);
    int32_t steps = scale * STEPS_PER_UNIT;
    for (int32_t s = 0; s < steps; s++) {
        drift(DT);
        kick(s + 1 < steps ? DT : 0.5 * DT);
    }

    double e1 = energy();
    printf("energy after:  %.9f\n", e1);
    double drift_rel = (e1 - e0) / e0;
    if (drift_rel < 0.0)
        drift_rel = -drift_rel;
    printf("body 1 at (%.9f, %.9f, %.9f)\n", bodies[1].x, bodies[1].y, bodies[1].z);
    if (!(drift_rel < 1e-3)) {
        printf("FAIL: relative energy drift %.3e too large\n", drift_rel);
        return 1;
    }
    uint32_t check = 0;
    for (int i = 0; i < NB; i++) {
        check = mix64(check, bits_of(bodies[i].x));
        check = mix64(check, bits_of(bodies[i].vy));
    }
    printf("checksum: %08x\n", mix64(check, bits_of(e1)));
    return 0;
}
