"""Analytic predictions of the papers as pure functions, each citing its THEORY.md section and
equation, vectorized over ρ = N/d (``width_ratio``) and tested against the exact finite-d engine.

Modules: :mod:`.hermite` (λ₀, λ₁, λ₂, λ̃ of any activation), :mod:`.fixed_point` (ψ of eqs. 9/14),
:mod:`.ghorbani_quadratic` (Theorems 1–3, Corollary 1, eqs. 11–13, Fig. 1),
:mod:`.ghorbani_mixture` (Theorems 4–6, eqs. 15–17, Bayes MMSE), :mod:`.damian` (sample-complexity
reference curves, CSQ bound), :mod:`.yehudai_shamir` (exact RF risk for a single ReLU, the
exponential lower bound's shape, the non-linear share of a ReLU), :mod:`.staircase` (kernel ridge
in the polynomial regime), :mod:`.spectra` (Gram spectra, power-law decay), :mod:`.growth`
(exponential and power-law growth fits), :mod:`.random_features_ridge` (Mei–Montanari RF ridge
asymptotics), :mod:`.incremental` (saddle-to-saddle learning times of the quadratic network),
:mod:`.finite_width` (finite-d correction of quadratic-activation RF at N ≫ d),
:mod:`.single_neuron_harmonics` (harmonic-count prediction of the random features a ReLU neuron
needs), :mod:`.minimal_head` (the smallest max|u_i| reaching a risk).
See docs/theory.md for the list of functions, assumptions and checks.
"""

from lazylab.theory.damian import (
    csq_sample_complexity, csq_tolerance, kernel_sample_complexity, one_step_sample_complexity,
    relu_gradient_leading_term, relu_gradient_quadratic_target)
from lazylab.theory.finite_width import finite_width_rf_correction
from lazylab.theory.fixed_point import fixed_point_psi, fixed_point_psi_isotropic
from lazylab.theory.ghorbani_mixture import (
    bayes_risk_mixture, equation17_risks, network_risk_mixture, neural_tangent_risk_mixture,
    neural_tangent_risk_mixture_for_weights, random_features_risk_mixture,
    random_features_risk_mixture_limit, whitened_difference)
from lazylab.theory.ghorbani_printed import printed_equation17_random_features_risk
from lazylab.theory.ghorbani_quadratic import (
    equation13_risks, figure1_large_dim_risks, network_risk, neural_tangent_expected_risk,
    neural_tangent_risk, neural_tangent_risk_for_weights, random_features_risk,
    random_features_risk_limit, random_features_risk_quadratic_activation,
    resolve_weight_covariance, trace_alignment)
from lazylab.theory.hermite import HermiteConstants, hermite_constants
from lazylab.theory.feature_learning import (kernel_norm_squared, rich_alignment,
                                             rich_kernel_change, top_part)
from lazylab.theory.incremental import incremental_learning_times
from lazylab.theory.random_features_ridge import (
    random_features_optimal_ridge_risk, random_features_ridge_bias_variance,
    random_features_ridge_fixed_point, random_features_ridge_risk)
from lazylab.theory.staircase import (harmonic_dimension, kernel_degree_eigenvalues,
                                      kernel_ridge_risk, staircase_degree, staircase_risk)
from lazylab.theory.growth import exponential_fit, log_log_slope
from lazylab.theory.kernel_threshold import (RELU_KERNEL_PROFILES, best_kernel_ridge_risk,
                                             homogeneous_floor, kernel_samples_needed)
from lazylab.theory.minimal_head import MinimalHead, minimal_max_head, ridge_path_head_bounds
from lazylab.theory.single_neuron_harmonics import (
    harmonic_multiplicities, random_projection_risk, relu_features_required_width,
    relu_features_risk, relu_hermite_energies, relu_sphere_energies, relu_staircase_degree)
from lazylab.theory.spectra import gram_spectrum, power_law_exponent
from lazylab.theory.yehudai_shamir import (SingleNeuronFit, exponential_lower_bound_shape,
                                           relu_nonlinear_share,
                                           single_neuron_random_features_risk)

__all__ = [
    "printed_equation17_random_features_risk",
    "HermiteConstants", "hermite_constants", "fixed_point_psi", "fixed_point_psi_isotropic",
    "random_features_risk", "random_features_risk_limit",
    "random_features_risk_quadratic_activation", "neural_tangent_risk",
    "neural_tangent_expected_risk", "neural_tangent_risk_for_weights", "network_risk",
    "equation13_risks", "figure1_large_dim_risks", "resolve_weight_covariance", "trace_alignment",
    "random_features_risk_mixture", "random_features_risk_mixture_limit",
    "neural_tangent_risk_mixture", "neural_tangent_risk_mixture_for_weights",
    "network_risk_mixture", "bayes_risk_mixture", "equation17_risks", "whitened_difference",
    "one_step_sample_complexity", "kernel_sample_complexity", "csq_tolerance",
    "csq_sample_complexity", "relu_gradient_leading_term", "relu_gradient_quadratic_target",
    "SingleNeuronFit", "single_neuron_random_features_risk", "exponential_lower_bound_shape",
    "harmonic_dimension", "kernel_degree_eigenvalues", "staircase_degree", "staircase_risk",
    "kernel_ridge_risk", "relu_nonlinear_share", "gram_spectrum", "power_law_exponent",
    "exponential_fit", "log_log_slope",
    "random_features_ridge_risk", "random_features_optimal_ridge_risk",
    "random_features_ridge_bias_variance", "random_features_ridge_fixed_point",
    "incremental_learning_times", "finite_width_rf_correction",
    "RELU_KERNEL_PROFILES", "best_kernel_ridge_risk", "kernel_samples_needed",
    "homogeneous_floor",
    "incremental_learning_times", "finite_width_rf_correction", "MinimalHead",
    "minimal_max_head", "ridge_path_head_bounds", "harmonic_multiplicities",
    "random_projection_risk", "relu_features_required_width", "relu_features_risk",
    "relu_sphere_energies", "relu_hermite_energies", "relu_staircase_degree",
    "kernel_norm_squared", "rich_alignment", "rich_kernel_change", "top_part",
]
