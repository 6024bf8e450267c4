using ZeroFL.Engine.Autograd;
using ZeroFL.Kernels;

namespace ZeroFL.Engine.Ops;

/// <summary>Differentiable ops: each forward launches kernels and records its backward right here.</summary>
public static partial class Ops
{
    /// <summary>
    /// 2-D convolution. x: [batch, inChannels, height, width]; w: [outChannels, inChannels, kh, kw];
    /// bias: [outChannels] or null. Returns [batch, outChannels, outHeight, outWidth].
    /// With <paramref name="retainSubsampled"/> a 1x1 convolution with stride s &gt; 1 and no padding
    /// keeps for its weight gradient only what it reads, x[:, :, ::s, ::s] (a copy of 1/s^2 of x),
    /// and computes dw as the equivalent stride-1 convolution of that copy (the same sums). It saves
    /// memory only when no other op keeps x; any other geometry ignores the flag.
    /// </summary>
    public static Tensor Conv2d(Tape tape, Tensor x, Tensor w, Tensor? bias, int stride, int padding, bool retainSubsampled = false)
    {
        if (x.Shape.Length != 4 || w.Shape.Length != 4)
        {
            throw new ArgumentException($"conv2d expects 4-D input and weight, got {x} and {w}");
        }
        if (x.Dim(1) != w.Dim(1))
        {
            throw new ArgumentException($"conv2d: input has {x.Dim(1)} channels, weight expects {w.Dim(1)} ({x}, {w})");
        }
        if (bias is not null && bias.Length != w.Dim(0))
        {
            throw new ArgumentException($"conv2d: bias has {bias.Length} elements, weight has {w.Dim(0)} output channels");
        }
        var g = new ConvGeometry(x.Dim(0), x.Dim(1), x.Dim(2), x.Dim(3), w.Dim(0), w.Dim(2), w.Dim(3), stride, padding);
        g.Validate();
        var k = tape.Kernels;
        bool gradFlows = x.RequiresGrad || w.RequiresGrad || (bias?.RequiresGrad ?? false);
        var y = tape.NewTensor([g.Batch, g.OutChannels, g.OutHeight, g.OutWidth], gradFlows);
        bool needsGrad = gradFlows && tape.Recording;
        bool subsample = retainSubsampled && needsGrad && w.RequiresGrad
            && g.KernelHeight == 1 && g.KernelWidth == 1 && g.Padding == 0 && g.Stride > 1;
        // dw of the strided 1x1 convolution = dw of a stride-1 1x1 convolution over the subsample.
        var keptGeometry = subsample
            ? new ConvGeometry(g.Batch, g.InChannels, g.OutHeight, g.OutWidth, g.OutChannels, 1, 1, 1, 0)
            : g;
        var kept = x.Data;
        var row = ProfileRow(tape, Profiling.OpKinds.Conv);
        using (Measure(tape, row, Profiling.Pass.Forward))
        {
            k.Conv.Forward(g, x.Data, w.Data, y.Data, tape.Workspace.Scratch(k.Conv.WorkspaceLength(g)));
            if (bias is not null)
            {
                k.Activation.BiasForward(y.Data, bias.Data, g.Batch, g.OutChannels, g.OutHeight * g.OutWidth);
            }
            if (subsample)
            {
                kept = tape.Workspace.Floats.Allocate(keptGeometry.InputLength);
                k.Gather.Subsample(x.Data, g.Batch * g.InChannels, g.InHeight, g.InWidth, g.Stride, kept);
            }
        }
        CountFlops(tape, row, Profiling.Pass.Forward, g.ForwardFlops, g.ForwardFlops);
        if (!needsGrad)
        {
            return y;
        }
        if (row is not null)
        {
            row.Steps++;
            // The subsample is this op's own copy (a fresh key); x itself may be shared with other ops.
            tape.Profiler!.Retain(row, subsample ? new object() : x.Root ?? x, (subsample ? keptGeometry.InputLength : x.Length) * sizeof(float), x.Length * sizeof(float));
        }
        var record = tape.Record(y, () =>
        {
            if (!y.HasGrad)
            {
                return;
            }
            var scratch = tape.Workspace.Scratch(Math.Max(k.Conv.WorkspaceLength(g), k.Conv.WorkspaceLength(keptGeometry)));
            if (w.RequiresGrad)
            {
                using (Measure(tape, row, Profiling.Pass.BackwardWeight))
                {
                    k.Conv.BackwardWeight(keptGeometry, y.Grad, kept, tape.GradOf(w), scratch);
                }
                CountFlops(tape, row, Profiling.Pass.BackwardWeight, g.ForwardFlops, g.ForwardFlops);
            }
            if (bias is not null && bias.RequiresGrad)
            {
                using (Measure(tape, row, Profiling.Pass.BackwardWeight))
                {
                    k.Activation.BiasBackward(y.Grad, tape.GradOf(bias), g.Batch, g.OutChannels, g.OutHeight * g.OutWidth);
                }
            }
            if (x.RequiresGrad)
            {
                using (Measure(tape, row, Profiling.Pass.BackwardInput))
                {
                    var dx = tape.GradToWrite(x, out bool overwrite);
                    k.Conv.BackwardInput(g, y.Grad, w.Data, dx, scratch, overwrite);
                }
                CountFlops(tape, row, Profiling.Pass.BackwardInput, g.ForwardFlops, g.ForwardFlops);
            }
        });
        if (subsample)
        {
            record.Keeps(kept);
        }
        else if (w.RequiresGrad)
        {
            record.Reads(x);
        }
        return y;
    }
}
