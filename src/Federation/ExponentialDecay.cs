namespace ZeroFL.Federation;

/// <summary>
/// The paper's learning-rate schedule over federated rounds: exponential decay from
/// <see cref="Start"/> to <see cref="End"/>, lr(r) = start * (end / start)^(r / (R - 1)) for rounds
/// r = 0..R-1 (R = <see cref="Rounds"/>); lr(0) = start and lr(R - 1) = end exactly; R = 1 gives
/// start. ZeroFL: CIFAR-10 0.1 to 0.01 over 700 rounds, Speech Commands 0.01 to 0.001 over 200,
/// FEMNIST 0.004 to 0.001 over 1000.
/// </summary>
public sealed record ExponentialDecay
{
    /// <summary>Checks and stores the schedule: start and end positive and finite, at least one round.</summary>
    public ExponentialDecay(double start, double end, int rounds)
    {
        if (!(start > 0 && double.IsFinite(start)))
        {
            throw new ArgumentOutOfRangeException(nameof(start), start, "start learning rate must be positive and finite");
        }
        if (!(end > 0 && double.IsFinite(end)))
        {
            throw new ArgumentOutOfRangeException(nameof(end), end, "end learning rate must be positive and finite");
        }
        if (rounds < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(rounds), rounds, "rounds must be at least 1");
        }
        Start = start;
        End = end;
        Rounds = rounds;
    }

    /// <summary>Learning rate of round 0.</summary>
    public double Start { get; }

    /// <summary>Learning rate of the last round.</summary>
    public double End { get; }

    /// <summary>Number of rounds R.</summary>
    public int Rounds { get; }

    /// <summary>The learning rate of <paramref name="round"/> (0..Rounds-1).</summary>
    public double At(int round)
    {
        if (round < 0 || round >= Rounds)
        {
            throw new ArgumentOutOfRangeException(nameof(round), round, $"round must be in 0..{Rounds - 1}");
        }
        if (round == 0)
        {
            return Start;
        }
        if (round == Rounds - 1)
        {
            return End;
        }
        return Start * Math.Pow(End / Start, (double)round / (Rounds - 1));
    }
}
