using ZeroFL.Engine.Autograd;

namespace ZeroFL.Engine.Ops;

public static partial class Ops
{
    /// <summary>
    /// Fully connected layer y = x w^T + b. x: [batch, in]; w: [out, in]; bias: [out] or null.
    /// Returns [batch, out].
    /// </summary>
    public static Tensor Linear(Tape tape, Tensor x, Tensor w, Tensor? bias)
    {
        if (x.Shape.Length != 2 || w.Shape.Length != 2 || x.Dim(1) != w.Dim(1))
        {
            throw new ArgumentException($"linear expects input [batch, in] and weight [out, in] with matching 'in', got {x} and {w}");
        }
        if (bias is not null && bias.Length != w.Dim(0))
        {
            throw new ArgumentException($"linear: bias has {bias.Length} elements, weight has {w.Dim(0)} outputs");
        }
        int batch = x.Dim(0), inputs = x.Dim(1), outputs = w.Dim(0);
        var k = tape.Kernels;
        bool needsGrad = x.RequiresGrad || w.RequiresGrad || (bias?.RequiresGrad ?? false);
        var y = tape.NewTensor([batch, outputs], needsGrad);
        var row = ProfileRow(tape, Profiling.OpKinds.Linear);
        double flops = 2.0 * batch * outputs * inputs;
        using (Measure(tape, row, Profiling.Pass.Forward))
        {
            k.Gemm.Run(false, true, batch, outputs, inputs, 1f, x.Data, inputs, w.Data, inputs, 0f, y.Data, outputs);
            if (bias is not null)
            {
                k.Activation.BiasForward(y.Data, bias.Data, batch, outputs, 1);
            }
        }
        CountFlops(tape, row, Profiling.Pass.Forward, flops, flops);
        if (!needsGrad)
        {
            return y;
        }
        if (row is not null)
        {
            row.Steps++;
            tape.Profiler!.Retain(row, x.Root ?? x, x.Length * sizeof(float), x.Length * sizeof(float));
        }
        var record = tape.Record(y, () =>
        {
            if (!y.HasGrad)
            {
                return;
            }
            if (w.RequiresGrad)
            {
                using (Measure(tape, row, Profiling.Pass.BackwardWeight))
                {
                    k.Gemm.Run(true, false, outputs, inputs, batch, 1f, y.Grad, outputs, x.Data, inputs, 1f, tape.GradOf(w), inputs);
                }
                CountFlops(tape, row, Profiling.Pass.BackwardWeight, flops, flops);
            }
            if (bias is not null && bias.RequiresGrad)
            {
                using (Measure(tape, row, Profiling.Pass.BackwardWeight))
                {
                    k.Activation.BiasBackward(y.Grad, tape.GradOf(bias), batch, outputs, 1);
                }
            }
            if (x.RequiresGrad)
            {
                using (Measure(tape, row, Profiling.Pass.BackwardInput))
                {
                    k.Gemm.Run(false, false, batch, inputs, outputs, 1f, y.Grad, outputs, w.Data, inputs, 1f, tape.GradOf(x), inputs);
                }
                CountFlops(tape, row, Profiling.Pass.BackwardInput, flops, flops);
            }
        });
        if (w.RequiresGrad)
        {
            record.Reads(x);
        }
        return y;
    }
}
