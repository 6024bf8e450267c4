using ZeroFL.Engine.Training;

namespace ZeroFL.Federation.Simulation;

/// <summary>
/// Flower's aggregate_evaluate: the clients' evaluations of the global model on their own
/// validation splits, averaged weighted by each client's number of validation examples.
/// </summary>
public static class FederatedEvaluation
{
    /// <summary>
    /// The example-weighted mean accuracy and loss of <paramref name="clients"/>, with the total
    /// examples; null when no client had a validation example (a client with none has weight 0).
    /// </summary>
    public static Evaluation? Aggregate(IEnumerable<Evaluation> clients)
    {
        ArgumentNullException.ThrowIfNull(clients);
        double accuracy = 0, loss = 0;
        int examples = 0;
        foreach (var client in clients)
        {
            if (client.Samples < 0)
            {
                throw new ArgumentException($"a client evaluation has {client.Samples} examples");
            }
            accuracy += client.Accuracy * client.Samples;
            loss += client.Loss * client.Samples;
            examples += client.Samples;
        }
        return examples == 0 ? null : new Evaluation(accuracy / examples, loss / examples, examples);
    }
}
