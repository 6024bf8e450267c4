namespace ZeroFL.Kernels.Reference;

/// <summary>
/// Plain-loop reference for <see cref="ServerOptimizerKernels"/>, in float with the operations in
/// the order Flower's FedAdam / FedYogi / FedAdagrad write them (numpy, float32 arrays).
/// </summary>
public static class ServerOptimizerReference
{
    /// <summary>
    /// d = aggregate (difference aggregate) or aggregate - model; m = beta1 m + (1 - beta1) d;
    /// v: Adam beta2 v + (1 - beta2) d^2, Yogi v - (1 - beta2) d^2 sign(v - d^2), Adagrad v + d^2;
    /// model += lr m / (sqrt(v) + tau).
    /// </summary>
    public static void Step(float[] model, float[] aggregate, float[] firstMoment, float[] secondMoment, ServerStep step)
    {
        float oneMinusBeta1 = 1f - step.Beta1, oneMinusBeta2 = 1f - step.Beta2;
        for (int i = 0; i < model.Length; i++)
        {
            float delta = step.AggregateIsDifference ? aggregate[i] : aggregate[i] - model[i];
            firstMoment[i] = step.Beta1 * firstMoment[i] + oneMinusBeta1 * delta;
            float squared = delta * delta;
            float v = secondMoment[i];
            secondMoment[i] = step.Rule switch
            {
                SecondMomentRule.Adam => step.Beta2 * v + oneMinusBeta2 * squared,
                SecondMomentRule.Yogi => v - oneMinusBeta2 * squared * MathF.Sign(v - squared),
                _ => v + squared,
            };
            model[i] += step.LearningRate * firstMoment[i] / (MathF.Sqrt(secondMoment[i]) + step.Tau);
        }
    }
}
