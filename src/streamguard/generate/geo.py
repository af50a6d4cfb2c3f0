"""Real Brazilian cities with their coordinates and population, and great-circle distance.

The population (IBGE 2022 census, rounded) weights where accounts live, so São Paulo has many
more accounts than Palmas. Coordinates are the city centres; legitimate traffic stays there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

EARTH_RADIUS_KM = 6371.0088  # the mean radius, the same one the IMPOSSIBLE_TRAVEL rule uses


@dataclass(frozen=True)
class City:
    """A city centre: name, state (UF), latitude, longitude and population."""

    name: str
    state: str
    lat: float
    lon: float
    population: int


CITIES: tuple[City, ...] = (
    City("São Paulo", "SP", -23.5505, -46.6333, 11_451_000),
    City("Rio de Janeiro", "RJ", -22.9068, -43.1729, 6_211_000),
    City("Brasília", "DF", -15.7939, -47.8828, 2_817_000),
    City("Fortaleza", "CE", -3.7319, -38.5267, 2_428_000),
    City("Salvador", "BA", -12.9714, -38.5014, 2_418_000),
    City("Belo Horizonte", "MG", -19.9167, -43.9345, 2_316_000),
    City("Manaus", "AM", -3.1190, -60.0217, 2_063_000),
    City("Curitiba", "PR", -25.4284, -49.2733, 1_773_000),
    City("Recife", "PE", -8.0476, -34.8770, 1_488_000),
    City("Goiânia", "GO", -16.6869, -49.2648, 1_437_000),
    City("Porto Alegre", "RS", -30.0346, -51.2177, 1_332_000),
    City("Belém", "PA", -1.4558, -48.4902, 1_303_000),
    City("Guarulhos", "SP", -23.4543, -46.5337, 1_291_000),
    City("Campinas", "SP", -22.9099, -47.0626, 1_139_000),
    City("São Luís", "MA", -2.5307, -44.3068, 1_037_000),
    City("Maceió", "AL", -9.6658, -35.7353, 957_000),
    City("Campo Grande", "MS", -20.4697, -54.6201, 898_000),
    City("São Gonçalo", "RJ", -22.8268, -43.0634, 896_000),
    City("Teresina", "PI", -5.0920, -42.8038, 866_000),
    City("João Pessoa", "PB", -7.1195, -34.8450, 833_000),
    City("São Bernardo do Campo", "SP", -23.6914, -46.5646, 810_000),
    City("Duque de Caxias", "RJ", -22.7856, -43.3117, 808_000),
    City("Nova Iguaçu", "RJ", -22.7592, -43.4510, 785_000),
    City("Natal", "RN", -5.7945, -35.2110, 751_000),
    City("Santo André", "SP", -23.6639, -46.5383, 748_000),
    City("Osasco", "SP", -23.5325, -46.7917, 728_000),
    City("Sorocaba", "SP", -23.5015, -47.4526, 723_000),
    City("Uberlândia", "MG", -18.9186, -48.2772, 713_000),
    City("Ribeirão Preto", "SP", -21.1704, -47.8103, 698_000),
    City("Cuiabá", "MT", -15.6014, -56.0979, 650_000),
    City("Contagem", "MG", -19.9317, -44.0536, 621_000),
    City("Joinville", "SC", -26.3044, -48.8487, 616_000),
    City("Feira de Santana", "BA", -12.2664, -38.9663, 616_000),
    City("Aracaju", "SE", -10.9472, -37.0731, 602_000),
    City("Londrina", "PR", -23.3045, -51.1696, 555_000),
    City("Juiz de Fora", "MG", -21.7642, -43.3496, 540_000),
    City("Florianópolis", "SC", -27.5954, -48.5480, 537_000),
    City("Aparecida de Goiânia", "GO", -16.8198, -49.2469, 527_000),
    City("Serra", "ES", -20.1211, -40.3074, 520_000),
    City("Campos dos Goytacazes", "RJ", -21.7545, -41.3244, 483_000),
    City("Niterói", "RJ", -22.8832, -43.1034, 482_000),
    City("Vila Velha", "ES", -20.3297, -40.2925, 467_000),
    City("Caxias do Sul", "RS", -29.1678, -51.1794, 463_000),
    City("Porto Velho", "RO", -8.7612, -63.9004, 460_000),
    City("Mogi das Cruzes", "SP", -23.5208, -46.1854, 451_000),
    City("Macapá", "AP", 0.0349, -51.0694, 442_000),
    City("Jundiaí", "SP", -23.1857, -46.8978, 443_000),
    City("Santos", "SP", -23.9608, -46.3336, 419_000),
    City("Campina Grande", "PB", -7.2307, -35.8811, 419_000),
    City("Montes Claros", "MG", -16.7350, -43.8617, 414_000),
    City("Boa Vista", "RR", 2.8235, -60.6758, 413_000),
    City("Maringá", "PR", -23.4205, -51.9331, 409_000),
    City("Piracicaba", "SP", -22.7338, -47.6476, 407_000),
    City("Anápolis", "GO", -16.3281, -48.9530, 391_000),
    City("Caruaru", "PE", -8.2760, -35.9819, 378_000),
    City("Vitória da Conquista", "BA", -14.8615, -40.8442, 370_000),
    City("Rio Branco", "AC", -9.9740, -67.8076, 364_000),
    City("Blumenau", "SC", -26.9194, -49.0661, 361_000),
    City("Petrolina", "PE", -9.3891, -40.5030, 354_000),
    City("Santarém", "PA", -2.4430, -54.7083, 331_000),
    City("Pelotas", "RS", -31.7654, -52.3376, 325_000),
    City("Vitória", "ES", -20.3155, -40.3128, 322_000),
    City("Palmas", "TO", -10.2491, -48.3243, 303_000),
    City("Mossoró", "RN", -5.1875, -37.3440, 264_000),
    City("Imperatriz", "MA", -5.5264, -47.4917, 273_000),
    City("Foz do Iguaçu", "PR", -25.5163, -54.5854, 285_000),
)


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km, the formula the IMPOSSIBLE_TRAVEL rule evaluates."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlmb = phi2 - phi1, math.radians(lon2 - lon1)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))


def distance_matrix_km() -> np.ndarray:
    """Distances between every pair of CITIES, in km (symmetric, zero diagonal)."""
    n = len(CITIES)
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            a, b = CITIES[i], CITIES[j]
            out[i, j] = out[j, i] = haversine_km(a.lat, a.lon, b.lat, b.lon)
    return out


def population_weights() -> np.ndarray:
    """The probability that an account lives in each city, proportional to its population."""
    pops = np.array([city.population for city in CITIES], dtype=float)
    return pops / pops.sum()
