using ZeroFL.Engine.Autograd;
using ZeroFL.Engine.Profiling;

namespace ZeroFL.Engine.Ops;

public static partial class Ops
{
    /// <summary>The profiler row of the layer running now, or null when not profiling.</summary>
    private static LayerProfile? ProfileRow(Tape tape, string kind) =>
        tape.Profiler?.Layer(tape.Scope.Length == 0 ? kind : tape.Scope, kind);

    /// <summary>Starts timing a pass when profiling; a no-op scope otherwise.</summary>
    private static OpProfiler.Scope Measure(Tape tape, LayerProfile? row, Pass pass) =>
        row is null ? default : tape.Profiler!.Measure(row, pass);

    /// <summary>Counts a training pass's FLOPs on the tape and, when profiling, on the layer's row.</summary>
    private static void CountFlops(Tape tape, LayerProfile? row, Pass pass, double dense, double actual)
    {
        if (!tape.Training || tape.Recomputing)
        {
            return;
        }
        tape.Flops.Add(dense, actual);
        if (row is not null)
        {
            row.DenseFlops[(int)pass] += dense;
            row.SparseFlops[(int)pass] += actual;
        }
    }
}
